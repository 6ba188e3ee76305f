"""Pieces shared by the training and evaluation scripts in ``train/`` (the library never imports train/)."""
