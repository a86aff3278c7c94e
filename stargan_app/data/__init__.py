"""Data set readers shared by training, evaluation and the region maps: CelebA (its split) and the idx files."""
