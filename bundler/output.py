"""Rendering of command results: one JSON object on stdout (``--json``) or rich text on stderr.

Commands never print; they return a `Result` and the CLI renders it once.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bundler.errors import EXIT_OK, error_json, redact
from spectramind.errors import SpectraMindError

console = Console(stderr=True, highlight=False)


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


def render_error(error: SpectraMindError, *, command: str, as_json: bool) -> None:
    if as_json:
        payload = {"command": command, "ok": False, **error_json(error)}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    # Text objects, not markup: messages quote paths and requirement strings with brackets.
    console.print(Text.assemble(("ERROR ", "bold red"), error.what))
    if error.where:
        console.print(Text.assemble(("  where: ", "bold"), error.where))
    if error.fix:
        console.print(Text.assemble(("  fix:   ", "bold green"), error.fix))
