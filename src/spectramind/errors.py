"""Run-side errors: same contract as the bundler's (what, where, fix; exit code), no third-party imports."""

from __future__ import annotations

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


class ConfigError(SpectraMindError):
    """A bad override, a config that does not match its schema, no config directory (exit 2: usage)."""

    exit_code = EXIT_USAGE


class DataError(SpectraMindError):
    """Malformed or missing competition data (names the planet and file)."""


class BudgetExhausted(SpectraMindError):
    exit_code = EXIT_BUDGET
