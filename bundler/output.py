"""Rendering of command results: one JSON object on stdout (``--json``) or rich text on stderr.

Commands never print; they return a `Result` and the CLI renders it once. When stderr is not a
terminal (a CI log, a pipe, a file) the text is a plain log: no live bars or spinners, and no line is
wrapped, so paths and commands stay whole and greppable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import Progress, ProgressColumn, TaskID
from rich.status import Status
from rich.table import Table
from rich.text import Text

from bundler.errors import EXIT_OK, error_json, redact
from spectramind.errors import SpectraMindError

_LOG_WIDTH = 10_000  # "no wrapping" for rich: wider than any line we print


class _Console(Console):
    """rich's console on stderr; off a terminal ``status`` is one plain line instead of a spinner."""

    def status(self, status: RenderableType, **kwargs: Any) -> Status:
        if self.is_terminal:
            return super().status(status, **kwargs)
        self.print(status)
        return Status(status, console=Console(quiet=True))  # the spinner runs where nothing shows


console = _Console(stderr=True, highlight=False, soft_wrap=True)
if not console.is_terminal:
    console.width = _LOG_WIDTH


class _PlainProgress(Progress):
    """Progress for a log: each task is one plain line when it is added; no live display."""

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        console.print(Text(description))
        return super().add_task(
            description, start=start, total=total, completed=completed, visible=visible, **fields
        )


def progress_display(*columns: str | ProgressColumn) -> Progress:
    """A live progress display on a terminal; plain one-line-per-task output anywhere else."""
    if console.is_terminal:
        return Progress(*columns, console=console)
    return _PlainProgress(*columns, console=console, disable=True)


@dataclass
class Result:
    """What a command did: ``data`` for --json, ``title``/``rows`` for the human table."""

    command: str
    data: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    exit_code: int = EXIT_OK


def render(result: Result, *, as_json: bool) -> None:
    if as_json:
        payload = {"command": result.command, "ok": result.exit_code == EXIT_OK, **result.data}
        sys.stdout.write(redact(json.dumps(payload, indent=2, sort_keys=True, default=str)) + "\n")
        sys.stdout.flush()
    for message in result.messages:
        console.print(Text(redact(message)))
    if result.rows:
        table = Table(title=result.title or None, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in result.rows:
            table.add_row(key, redact(value))
        console.print(table)


def render_error(error: SpectraMindError, *, command: str | None, as_json: bool) -> None:
    if as_json:
        payload = {"command": command, "ok": False, **error_json(error)}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    # Text objects, not markup: messages quote paths and requirement strings with brackets.
    console.print(Text.assemble(("ERROR ", "bold red"), redact(error.what)))
    if error.where:
        console.print(Text.assemble(("  where: ", "bold"), redact(error.where)))
    if error.fix:
        console.print(Text.assemble(("  fix:   ", "bold green"), redact(error.fix)))
