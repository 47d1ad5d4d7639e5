"""Measuring networks: step timing (`step_time`), training-step memory (`memory`), and the
calibration of runtime profiles (`calibrate`, over the network set of `calibration_set`).

Imports `trials.training` (device, threads, recipe). Importing this package imports no torch.
"""
