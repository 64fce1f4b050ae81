"""The one exception family of mmer.

Every error names the file (or the parameter) and the value that was wrong, so a user
can act on the message alone.
"""

from __future__ import annotations


class MmerError(Exception):
    """Base class of every error mmer raises on purpose."""


class ConfigError(MmerError, ValueError):
    """A parameter (params.yaml or a keyword argument) has a value mmer cannot use."""


class DatasetError(MmerError):
    """The corpus as a whole is wrong: duplicate clip ids, no clips, too many failures."""


class MediaError(MmerError):
    """A media file cannot be used: unreadable, truncated, no stream of the needed kind."""


class NoAudioError(MediaError):
    """The file has no audio stream (or it is silent where speech was needed)."""


class NoSpeechError(MediaError):
    """The audio holds no speech span long enough to use."""


class NoFaceError(MediaError):
    """No face was found in any sampled frame of the clip."""


class ModelError(MmerError):
    """A saved model is missing, unreadable or does not fit the features or labels given."""


class ExecutorError(MmerError):
    """The executor of a batch (a Dask cluster) cannot be reached or lost work it could not redo."""
