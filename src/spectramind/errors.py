"""Run-side errors: same contract as the bundler's (what, where, fix; exit code), no third-party imports."""

from __future__ import annotations

import errno
from typing import Any

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3
EXIT_BUDGET = 124


class SpectraMindError(Exception):
    """A user-facing failure on the run side."""

    exit_code = EXIT_ERROR

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  fix:   {self.fix}")
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form of the error (both command lines print it as their one object)."""
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "fix": self.fix,
            "exit_code": self.exit_code,
        }


class ConfigError(SpectraMindError):
    """A bad override, a config that does not match its schema, no config directory (exit 2: usage)."""

    exit_code = EXIT_USAGE


class CommandLineError(SpectraMindError):
    """An unknown option or a missing argument (exit 2: usage)."""

    exit_code = EXIT_USAGE


class DataError(SpectraMindError):
    """Malformed or missing competition data (names the planet and file)."""


class BudgetExhausted(SpectraMindError):
    exit_code = EXIT_BUDGET


class Interrupted(SpectraMindError):
    """Ctrl-C (SIGINT) stopped the command before it finished (exit 130, as shells report it)."""

    exit_code = 130


class FileSystemError(SpectraMindError):
    """The operating system refused a file operation: disk full, permission, read-only, missing path."""


# errno -> (what happened, how to fix it): the operating-system failures a user can act on.
_OS_FIXES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "no space left on the device",
        "free space on that file system, or write elsewhere (--out, TMPDIR, bundle.cache_dir)",
    ),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota, or write elsewhere"),
    errno.EACCES: (
        "permission denied",
        "give this user access to the path (or run where it may write), or choose another path",
    ),
    errno.EPERM: ("operation not permitted", "give this user access to the path, or choose another path"),
    errno.EROFS: ("the file system is read-only", "write to a writable location (--out, TMPDIR)"),
    errno.ENOENT: (
        "no such file or directory",
        "check the path: create the input or pass the right one",
    ),
    errno.ENOTDIR: ("a path component is not a directory", "check the path"),
    errno.EISDIR: ("a directory was found where a file was expected", "pass a file, not a directory"),
}


def os_error(exc: OSError, context: str) -> FileSystemError:
    """The error-family form of an operating-system error: disk full, permission, read-only, missing.

    ``where`` is the path the system named, else ``context`` (a write() that hits a full disk names none).
    """
    what, fix = _OS_FIXES.get(
        exc.errno or 0, (exc.strerror or str(exc), "check the path and the device it is on")
    )
    name = errno.errorcode.get(exc.errno or 0)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return FileSystemError(
        f"{what} ({name})" if name else what,
        where=" -> ".join(paths) or context,
        fix=fix,
    )


def in_family(exc: BaseException, where: str) -> SpectraMindError | None:
    """``exc`` as an error of the family, or None for a bug (whose traceback a report needs).

    Both command lines send every failure through here: the family itself, operating-system
    errors, Ctrl-C, and a configuration key an override removed (omegaconf's errors).
    """
    if isinstance(exc, SpectraMindError):
        return exc
    if isinstance(exc, OSError):
        return os_error(exc, where)
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted", where=where, fix="run the command again")
    if type(exc).__module__.startswith("omegaconf."):
        from spectramind.config import config_key_error  # omegaconf is there: it raised this

        return config_key_error(exc)
    return None
