"""The submission file through one boot: which version came from where, and what to put back.

Boot writes ``sample_submission.csv`` first (a copy kept as the *trusted* fallback: no bundle code made
it), then the payload's fallback prediction, then the command writes its own. `final` decides what
stays: after a verification failure only the trusted copy; after a broken submission the last valid
one; and it names the source of what stays by content, so a record never credits the command with
a file that boot wrote. A training run makes no submission at all: a training kernel must not pass
for one, so boot then writes none (`makes_submission`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from .base import SUBMISSION_NAME, atomic_write, log
from .manifest import file_sha256
from .records import submission_problem

NO_SUBMISSION = "none: a training run makes no submission"


def makes_submission(command: list[str]) -> bool:
    """False for ``spectramind train ...``: boot writes no submission around it."""
    words = [a for a in command if not a.startswith("-")]
    return words[:2] != ["spectramind", "train"]


class Submissions:
    def __init__(
        self, out: Path, workdir: Path, sample: Callable[[], Path | None], *, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self.target = out / SUBMISSION_NAME
        self.trusted = workdir / "submission.sample.csv"
        self.backup = workdir / "submission.last-valid.csv"
        self.known: dict[str, str] = {}  # sha256 of a submission boot wrote -> its source
        self.sample = sample

    def problem(self) -> str | None:
        if not self.enabled:
            return NO_SUBMISSION
        return submission_problem(self.target, self.sample())

    def remember(self, source: str) -> None:
        if self.target.is_file():
            self.known[file_sha256(self.target)] = source

    def copy_sample(self) -> bool:
        """The data's sample_submission.csv as the submission: valid, and no bundle code involved."""
        sample = self.sample() if self.enabled else None
        if sample is None:
            return False
        data = sample.read_bytes()
        atomic_write(self.target, data)
        if not self.trusted.is_file():
            atomic_write(self.trusted, data)
        self.remember("sample_submission")
        log(f"copied {sample} as the first fallback submission")
        return True

    def restore(self, source: Path, name: str) -> bool:
        if not source.is_file():
            return False
        atomic_write(self.target, source.read_bytes())
        self.remember(name)
        return True

    def back_to_trusted(self) -> None:
        """Nothing but the sample copy (or nothing at all) after code that may not be the bundle's ran."""
        if not self.restore(self.trusted, "sample_submission"):
            self.target.unlink(missing_ok=True)

    def keep_valid(self) -> None:
        """Remember the current submission, if valid, as the one to restore after the command."""
        if self.enabled and self.problem() is None:
            shutil.copyfile(self.target, self.backup)

    def final(self, *, reason: str, command_started: bool) -> str | None:
        """Decide what stays as the submission; returns its source (None: no submission)."""
        # Nothing from unverified code survives; a training run leaves no submission at all.
        if reason == "verification-failed" or not self.enabled:
            self.back_to_trusted()
            return "sample_submission" if self.target.is_file() else None
        problem = self.problem()
        if problem is not None:
            if self.restore(self.backup, "restored"):
                log(f"submission after the command was {problem}: restored the last valid one")
                return "restored"
            return "sample_submission" if self.copy_sample() else None
        digest = file_sha256(self.target)
        if command_started and reason == "completed":
            return self.known.get(digest, "command")
        if digest in self.known:
            return self.known[digest]
        return "last-written" if command_started else "unknown"
