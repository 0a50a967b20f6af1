"""The project's own exceptions.

Library code raises these; only the CLI layer catches them and turns them into
one line per problem and exit code 2 (user errors) or 1 (everything else).
"""

from __future__ import annotations


class LrtrackError(Exception):
    """Base class of every error lrtrack raises on purpose."""


class UserError(LrtrackError):
    """Bad input from the user: a flag, a file, a sweep id.

    ``problems`` holds one human-readable line per problem, each naming the
    field or file it is about. The CLI prints them and exits with code 2.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class DataUnavailableError(UserError):
    """A dataset's files are missing and could not be provided automatically."""


class StoreError(LrtrackError):
    """The sweep store failed: a driver error, a corrupt file, a lost connection."""


class StoreGoneError(StoreError):
    """The store's file was deleted or replaced while an agent was using it: stop, don't write into the void."""


class UnknownSweepError(UserError):
    """No sweep with that id in the store."""


class StoreOpenError(StoreError, UserError):
    """The store URL cannot be opened, or the file is not an lrtrack store."""

    def __init__(self, problems: str | list[str]):
        UserError.__init__(self, problems)


class NoStoreError(StoreOpenError):
    """A command that needs an existing store found none at the URL (and created none)."""


class LrtrackWarning(UserWarning):
    """Something that works but may hurt the user (the CLI prints it as one ``warning:`` line)."""
