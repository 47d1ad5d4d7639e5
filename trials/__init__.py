"""Execution: training, timing, Ray Tune studies, comparisons, reports and the CLI.

Importing this package imports neither torch nor ray; the modules that need them do.
"""
