"""The one error family of the bundler and its exit codes: 0 ok, 1 error, 2 usage, 3 verify, 124 budget.

Every message says what failed, where, and how to fix it. Anything that looks like a credential
is redacted before a message is shown (`redact`).
"""

from __future__ import annotations

import os
import re

from spectramind.errors import SpectraMindError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3
EXIT_BUDGET = 124

# Values of these variables never appear in output, whatever path they take to get there.
_SECRET_ENV = ("KAGGLE_KEY", "KAGGLE_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN")
_SECRET_PATTERNS = (
    re.compile(r"(?i)((?:kaggle_key|api[_-]?token|secret|password|key)\s*[=:]\s*)[\"']?[^\s\"',]{6,}"),
    re.compile(r"(?i)(\"key\"\s*:\s*\")[^\"]+"),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"()KGAT_[A-Za-z0-9]{8,}"),
)


def redact(text: str) -> str:
    """Mask credential-looking values in ``text`` (env-held secrets and key=value patterns)."""
    for name in _SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}***", text)
    return text


class BundlerError(SpectraMindError):
    """A user-facing failure: ``what`` went wrong, ``where``, and the ``fix`` (credentials redacted).

    It extends the run side's `SpectraMindError`, so one family covers both halves.
    """

    exit_code = EXIT_ERROR

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(
            redact(what), where=redact(where) if where else None, fix=redact(fix) if fix else None
        )


class UsageError(BundlerError):
    """Wrong command line or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class VerificationError(BundlerError):
    """Tampered, missing or mismatched files, secrets found, limits exceeded (exit 3)."""

    exit_code = EXIT_VERIFY


class BudgetExceeded(BundlerError):
    """The time budget ran out; a fallback submission was still written (exit 124)."""

    exit_code = EXIT_BUDGET


def error_json(error: SpectraMindError) -> dict[str, object]:
    """The --json form of any error of the family (credentials redacted)."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in error.to_json().items()}
