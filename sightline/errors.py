"""Errors a user can act on.

Every failure that comes from the user's input (a missing file, a corrupt image, an unknown model
name, a bad flag) is raised as a ``SightlineError`` whose message says what went wrong, which
file or name it was, and what to do. The CLI prints the message and exits non-zero; it never
shows a traceback for these.
"""

from __future__ import annotations


class SightlineError(Exception):
    """Base class: the message is meant for the user, as is."""


class DataError(SightlineError):
    """A dataset, image file or folder could not be used."""


class DownloadError(DataError):
    """A file could not be fetched or failed its checksum."""


class ImageError(DataError):
    """One image file could not be read; ``path`` names it."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class PathRefusedError(SightlineError):
    """A path inside a folder sightline guards (the runs folder, a data folder) that would lead
    out of it: a symbolic link (``LinkRefusedError``), ``..`` or an absolute path elsewhere.
    ``path`` names it; nothing is read or written through it (``fileio.inside``)."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(message)


class LinkRefusedError(PathRefusedError):
    """A file or folder inside a guarded folder is a symbolic link: it could lead anywhere on
    the machine, so sightline never follows it there (the guarded folder itself may be a link:
    the user chose it)."""

    def __init__(self, path: object, root: object) -> None:
        super().__init__(
            path,
            f"{path} is a symbolic link: refused (sightline follows no link inside {root}; "
            "put the file itself there)",
        )


class ModelError(SightlineError):
    """An unknown model name or bad model options."""


class RunError(SightlineError):
    """A run folder or checkpoint is missing or unreadable."""


class RunNotFoundError(RunError):
    """No run of that name (or no run at all) in the runs folder."""


class RunInUseError(RunError):
    """The run is being trained, so it cannot be changed or deleted now."""


class ConfigError(SightlineError):
    """A training or evaluation option is invalid."""


class ExportError(SightlineError):
    """A model could not be exported, or its export failed the parity check."""


class NotExportedError(RunError):
    """A run has no (current) exported model where one was asked for: ``sightline export RUN``."""


def failure_text(error: BaseException) -> str:
    """What a run folder or a job records of a failure: a SightlineError's message as it is (it
    was written for the user), anything else with its type's name in front."""
    return str(error) if isinstance(error, SightlineError) else f"{type(error).__name__}: {error}"
