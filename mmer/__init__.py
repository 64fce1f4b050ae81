"""mmer: audio-visual emotion recognition on RAVDESS-shaped corpora, as a DVC pipeline."""

__version__ = "0.1.0"
