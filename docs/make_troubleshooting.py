"""Regenerate the error catalogue at the end of docs/troubleshooting.md from the source.

Every ``raise <Error>("what", fix="...")`` site in ``bundler/`` and ``src/spectramind/`` becomes a
row (exit code, message, fix). ``--check`` exits 1 when the file is out of date (the test suite runs
it), so the catalogue cannot silently drift from the code.

    python docs/make_troubleshooting.py [--check]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "troubleshooting.md"
MARKER = "<!-- generated below by docs/make_troubleshooting.py: do not edit by hand -->"

# error class -> exit code (DESIGN §4); BootError carries its own code, shown as "1/3".
EXIT = {
    "SpectraMindError": "1",
    "DataError": "1",
    "ConfigError": "2",
    "BudgetExhausted": "124",
    "CommandLineError": "2",
    "FileSystemError": "1",
    "Interrupted": "130",
    "BundlerError": "1",
    "ResolutionError": "1",
    "NotFound": "1",
    "UsageError": "2",
    "VerificationError": "3",
    "BudgetExceeded": "124",
    "BootError": "1/3",
}


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return "…"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def catalogue() -> str:
    sections: list[str] = []
    files = sorted([*ROOT.glob("bundler/**/*.py"), *ROOT.glob("src/spectramind/**/*.py")])
    for path in files:
        rows: list[tuple[int, str]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name not in EXIT:
                continue
            fix = next((_text(k.value) for k in node.keywords if k.arg == "fix"), "")
            code = next((_text(k.value) for k in node.keywords if k.arg == "code"), "")
            exit_code = (
                EXIT[name] if not code else code.replace("EXIT_VERIFY", "3").replace("EXIT_ERROR", "1")
            )
            rows.append(
                (node.lineno, f"| {exit_code} | {_cell(_text(node.args[0]))} | {_cell(fix) or '—'} |")
            )
        if rows:
            rel = path.relative_to(ROOT).as_posix()
            sections.append(
                f"### `{rel}`\n\n| exit | message | fix |\n|---|---|---|\n"
                + "\n".join(r for _, r in sorted(rows))
            )
    return "\n\n".join(sections) + "\n"


def render() -> str:
    head = DOC.read_text(encoding="utf-8").split(MARKER)[0]
    return f"{head}{MARKER}\n\n{catalogue()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the catalogue is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python docs/make_troubleshooting.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
