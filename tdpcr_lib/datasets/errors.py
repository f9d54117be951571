"""The errors the dataset layer raises: data missing, or data that is wrong."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """The dataset (or its split manifest) is not where it was expected."""


class DataIntegrityError(ValueError):
    """A file of the dataset exists but is wrong (missing, corrupt, wrong shape/dtype/bands, NaN)."""


class DownloadError(RuntimeError):
    """A download failed (HTTP error, refused connection, stall, another download running);
    the message names the archive and its URL. Rerunning resumes where it stopped."""
