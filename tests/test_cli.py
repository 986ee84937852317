"""Both command lines as users meet them: help, version, overrides in any order, bad overrides,
operating-system errors, and nothing created on the host outside the project and the outputs."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bundler import cli as bundler_cli
from bundler.config import load
from bundler.errors import BundlerError
from bundler.steps import Steps
from spectramind import __version__
from spectramind import cli as spectramind_cli

REPO = Path(__file__).resolve().parent.parent
INTERNAL = re.compile(r"DESIGN|§|\bissues?\b", re.IGNORECASE)


def run(*argv: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ARGV`` as a user types it (a subprocess, stderr piped, so not a terminal)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", *argv],
        check=False,
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout is exactly one JSON object (what every --json failure must still print)."""
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stdout is not one JSON object:\n{proc.stdout!r}\nstderr:\n{proc.stderr}")
    assert isinstance(data, dict)
    return data


def _help_texts() -> dict[str, str]:
    texts = {"python -m bundler": run("bundler", "--help").stdout}
    for name in [*bundler_cli.COMMANDS, "probe"]:
        texts[f"python -m bundler {name}"] = run("bundler", name, "--help").stdout
    texts["spectramind"] = run("spectramind.cli", "--help").stderr
    for name in spectramind_cli.COMMANDS:
        texts[f"spectramind {name}"] = run("spectramind.cli", name, "--help").stdout
    return texts


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]


# --- help and version ------------------------------------------------------------------------------


def test_every_help_has_usage_overrides_examples_and_no_internal_references() -> None:
    texts = _help_texts()
    for command, text in texts.items():
        assert text.startswith(f"usage: {command}"), (command, text[:200])
        assert not INTERNAL.search(text), (command, INTERNAL.search(text))
        if command not in {"python -m bundler", "spectramind"}:  # each command shows examples
            assert "examples:" in text, command
    for command in ("lock", "build", "simulate", "demo"):
        assert (
            "OVERRIDE" in texts[f"python -m bundler {command}"]
            and "~key" in texts[f"python -m bundler {command}"]
        )
    for command in spectramind_cli.COMMANDS:
        assert "group=option" in texts[f"spectramind {command}"], command
    assert "--submission" in texts["spectramind score"] and "--truth" in texts["spectramind score"]
    assert "--note" in texts["python -m bundler probe"]


def test_every_positional_argument_has_help() -> None:
    _, parsers = bundler_cli._parsers()
    spectramind_parsers = {name: spectramind_cli.command_parser(name) for name in spectramind_cli.COMMANDS}
    for name, parser in [*parsers.items(), *spectramind_parsers.items()]:
        for action in _positionals(parser):
            assert action.help and not INTERNAL.search(action.help), (name, action.dest)


def test_error_messages_never_cite_internal_documents() -> None:
    """Every raised error of both halves, as the generated catalogue lists them."""
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import make_troubleshooting
    finally:
        sys.path.remove(str(REPO / "docs"))
    catalogue = make_troubleshooting.catalogue()
    assert "spectramind/errors.py" in catalogue  # the scan reached the run side
    assert not INTERNAL.search(catalogue), INTERNAL.search(catalogue)


@pytest.mark.parametrize("command", ["make-data", "train", "predict", "test", "score"])
def test_spectramind_command_help_is_help_not_a_run(command: str, tmp_path: Path) -> None:
    """``--help`` used to be read as a bad override (make-data/train/predict) or ran the self-test."""
    proc = run("spectramind.cli", command, "--help", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: spectramind {command}")
    assert "self-test" not in proc.stderr and "ERROR" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was run, nothing written


def test_both_clis_answer_version() -> None:
    bundler = run("bundler", "--version")
    spectramind = run("spectramind.cli", "--version")
    assert (bundler.returncode, spectramind.returncode) == (0, 0)
    assert __version__ in bundler.stdout and spectramind.stdout.strip() == f"spectramind {__version__}"


# --- overrides -------------------------------------------------------------------------------------


def test_overrides_work_before_or_after_options() -> None:
    """``simulate dist/bundle --budget 60 +env=kaggle`` was 'unrecognized arguments' (the demo's case)."""
    args = bundler_cli.parse(["simulate", "dist/bundle", "--budget", "60", "+env=kaggle", "--json"])
    assert (args.bundle_dir, args.budget, args.overrides, args.json) == (
        "dist/bundle",
        60.0,
        ["+env=kaggle"],
        True,
    )
    args = bundler_cli.parse(["demo", "env.seed=7", "--budget", "60", "data.seed=3"])
    assert (args.budget, args.overrides) == (60.0, ["env.seed=7", "data.seed=3"])
    args = spectramind_cli.command_parser("make-data").parse_intermixed_args(
        ["data.seed=7", "--json", "+env=ci"]
    )
    assert (args.json, args.overrides) == (True, ["data.seed=7", "+env=ci"])
    # And for real: the same lock check with the override before and after the options.
    before, after = (
        run("bundler", "lock", "env.seed=7", "--check", "--json"),
        run("bundler", "lock", "--check", "--json", "env.seed=7"),
    )
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert one_json(before)["ok"] is True and one_json(after)["ok"] is True


def test_demo_passes_overrides_to_every_step() -> None:
    """Each demo step gets the demo's overrides, after its options (bin/demo.sh hands on "$@")."""
    assert 'exec python -m bundler demo "$@"' in (REPO / "bin" / "demo.sh").read_text()
    settings = load([])
    ok = Steps(settings, ["env.seed=7"]).step(
        "lock-check", ["bundler", "lock", "--check", "--json"], want_json=True
    )
    assert ok["ok"] is True
    broken = Steps(settings, ["env=nonexistent"])  # proves the override reaches the step's command
    with pytest.raises(BundlerError, match="demo step 'lock-check' failed with exit 2"):
        broken.step("lock-check", ["bundler", "lock", "--check"])


BAD_OVERRIDES = ["~env", "env=", "=x", "foo.bar=[", "+env=nonexistent", "~nonexistent"]


@pytest.mark.parametrize("override", BAD_OVERRIDES)
@pytest.mark.parametrize(
    "argv", [["bundler", "build"], ["spectramind.cli", "make-data"]], ids=["bundler", "spectramind"]
)
def test_bad_override_exits_2_with_hydras_message(argv: list[str], override: str, tmp_path: Path) -> None:
    proc = run(*argv, "--json", override, env={"HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    data = one_json(proc)
    assert data["ok"] is False and data["error"] == "ConfigError" and data["exit_code"] == 2
    assert data["what"].startswith("bad configuration override") and data["fix"]
    assert override in data["where"]
    assert data["what"].split(":", 1)[0] in proc.stderr
    if override == "foo.bar=[":
        assert "no viable alternative" in data["what"]  # Hydra's own words
    if override == "+env=nonexistent":
        assert "Available options in 'env'" in data["what"] and "search path" not in data["what"]


def test_usage_error_with_json_is_one_json_object() -> None:
    for proc in (run("bundler", "verify", "--json"), run("bundler", "build", "--json", "--no-such-option")):
        assert proc.returncode == 2
        data = one_json(proc)
        assert data["error"] == "UsageError" and data["fix"].endswith("--help")
    proc = run("spectramind.cli", "score", "--json", "--no-such-option")
    assert proc.returncode == 2 and one_json(proc)["error"] == "CommandLineError"


# --- nothing created on the host -------------------------------------------------------------------


def test_commands_create_nothing_outside_the_project_and_their_outputs(tmp_path: Path) -> None:
    """``spectramind test`` created /kaggle/working on the host; no command may create what it only reads
    or checks."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir(), home.mkdir()
    nowhere = tmp_path / "nowhere"
    root_before = {p.name for p in Path("/").iterdir()}
    env = {"HOME": str(home)}
    with_config = {**env, "SPECTRAMIND_CONFIG_DIR": str(REPO / "configs")}
    runs = [
        run("spectramind.cli", "test", "--json", cwd=cwd, env=env),  # no config: the Kaggle defaults
        run("spectramind.cli", "test", "--json", "env=kaggle", cwd=cwd, env=with_config),
        run(
            "spectramind.cli",
            "test",
            "--json",
            f"env.output_dir={nowhere}/out",
            f"env.input_dir={nowhere}/in",
            cwd=cwd,
            env=with_config,
        ),
        run("bundler", "verify", str(nowhere / "bundle"), "--json", cwd=cwd, env=env),
        run("bundler", "push", str(nowhere / "bundle"), "--dry-run", "--json", cwd=cwd, env=env),
    ]
    for proc in runs:
        one_json(proc)  # each answered (a result or an error), none crashed
    kaggle = one_json(runs[1])
    output = next(c for c in kaggle["checks"] if c["name"] == "output")
    assert output["status"] == "fail" and "does not exist" in output["detail"]  # reported, not created
    assert {p.name for p in Path("/").iterdir()} - root_before == set()
    assert not nowhere.exists()
    assert list(cwd.iterdir()) == []


def test_removing_a_key_a_command_reads_is_a_usage_error(tmp_path: Path) -> None:
    proc = run(
        "spectramind.cli",
        "make-data",
        "--json",
        "~data.root",
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "SPECTRAMIND_CONFIG_DIR": str(REPO / "configs")},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    data = one_json(proc)
    assert data["error"] == "ConfigError" and "'data.root'" in data["what"] and "data.root" in data["fix"]
