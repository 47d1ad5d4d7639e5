"""Training one network: the recipe (`recipe`: the paper's schedule, learning rate and
weight decay), the device and threads (`device`), the train loop with EMA and checkpoints
(`train`), the run directory (`run_dir`) and exporting trained weights (`weights_export`).

Imports `trials.data` only. Importing this package imports no torch; `train` does.
"""
