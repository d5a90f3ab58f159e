"""One error type that carries what went wrong and how to fix it."""

from __future__ import annotations

import errno

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3  # a bug in git-cvfs: the traceback is in a log whose path is printed
EXIT_INTERRUPTED = 130
EXIT_SIGPIPE = 141  # the reader of our output went away, as for git (128 + SIGPIPE)


class CvfsError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(CvfsError):
    exit_code = EXIT_USAGE


class ConfigError(CvfsError):
    exit_code = EXIT_USAGE


class RefError(CvfsError):
    """Content that claims to be a cvfs ref but is not a valid one."""


class UnsafePathError(CvfsError):
    """A path or oid from untrusted input that would escape where it belongs."""


class ChangedUnderfootError(CvfsError):
    """A file changed (an edit, a checkout) while git-cvfs was replacing it: it is left as it now is."""


class FileInUseError(CvfsError):
    """Another process has a file open for writing: replacing it would send its writes nowhere."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is open for writing by another process; left as it is",
            hint="let that process finish (`fuser` or `lsof` names it), then run the command again",
        )


class GitError(CvfsError):
    pass


class ArchiveError(CvfsError):
    """An archive could not be reached or refused a request."""


class ObjectMissingError(ArchiveError):
    pass


class UnreachableError(ArchiveError):
    """No answer from the archive (a refused or timed-out connection, a read that timed out),
    after every retry: the rest of this run does not wait on it again."""


class IntegrityError(CvfsError):
    """Bytes did not hash to the oid they were fetched for."""


class LockTimeoutError(CvfsError):
    pass


# Errors from the user's machine, not from git-cvfs: a full disk, a read-only or failing one,
# permissions. Each has the fix to say with it; any other OSError reaching main is a bug.
ENVIRONMENT_HINTS = {
    errno.ENOSPC: "free some disk space, then run the command again",
    errno.EDQUOT: "your disk quota is used up: free some space, then run the command again",
    errno.EROFS: "that filesystem is mounted read-only",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EIO: "the disk reported an I/O error: check it (dmesg) before trusting what is on it",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or lower transfer.concurrency",
    errno.ENFILE: "the system ran out of open files: retry when fewer programs are running",
}
