"""The docs and the README stay true: the error catalogue matches the code, the two commands exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

FAMILY_RAISE = re.compile(
    r"raise (?:BundlerError|UsageError|VerificationError|ResolutionError|SpectraMindError|DataError"
    r"|ConfigError|BootError|BudgetExceeded|BudgetExhausted|NotFound)\("
)


def test_error_catalogue_is_up_to_date(repo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "docs/make_troubleshooting.py", "--check"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_raise_site_is_catalogued(repo: Path) -> None:
    text = (repo / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    raised = 0
    for path in [*repo.glob("bundler/**/*.py"), *repo.glob("src/spectramind/**/*.py")]:
        raised += len(FAMILY_RAISE.findall(path.read_text(encoding="utf-8")))
    rows = len(re.findall(r"^\| (?:1|2|3|124|1/3) \|", text, flags=re.MULTILINE))
    # Every direct raise of the error family is a row (helpers that build errors add more rows).
    assert rows >= raised > 50


def test_readme_has_the_two_commands_and_ci_runs_the_test_one(repo: Path) -> None:
    readme = (repo / "README.md").read_text(encoding="utf-8")
    head = readme[: readme.index("## Layout")]
    commands = re.findall(r"^bash bin/(\w+)\.sh", head, flags=re.MULTILINE)
    assert commands == ["demo", "test"]
    assert "bash bin/test.sh" in (repo / ".ci" / "run").read_text(encoding="utf-8")
    for name in commands:
        assert (repo / "bin" / f"{name}.sh").is_file()
