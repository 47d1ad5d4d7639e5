"""Scaling vs search vs hybrid as one resumable study (docs/compare.md): presets (`preset`),
the candidates of each round (`candidates`), the run that trains them (`run`), the timing
pass (`timing_pass`), the predicted-vs-measured epoch-time check (`runtime_check`) and the
HTML report (`report`).

Imports `trials.study` and the packages to its left. Importing this package imports no torch.
"""
