"""Datasets: the torch-free catalogue of named datasets (`catalogue`), the tensor datasets and
loaders (`datasets`), ImageFolder trees (`image_folder`) and the train/val splits (`splits`).

Importing this package imports no torch; `datasets` and `image_folder` do.
"""
