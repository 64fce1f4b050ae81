"""The sample corpus: RAVDESS-shaped clips of faces and synthetic emotional speech."""
