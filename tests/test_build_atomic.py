"""Atomic publish: a build SIGKILLed midway leaves the previous bundle whole, and no half bundle.

The build subprocess is paused at a step by the explicit test hook
``SPECTRAMIND_TEST_BUILD_PAUSE_AT=<step>`` (it prints a line and sleeps), then killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundler.commands.build import PAUSE_ENV
from spectramind.shim import verify_bundle
from tests import test_build as tb
from tests.test_build import TinyProject, run_cli, tree_bytes

# The tiny-project fixtures of test_build.py, shared by name.
setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny


def _kill_build_at(project: TinyProject, out: Path, step: str) -> str:
    """Start a build paused before ``step``, SIGKILL it there; return what it printed."""
    env = {**os.environ, PAUSE_ENV: step, f"{PAUSE_ENV}_S": "120"}
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "bundler", *project.args(out)],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        deadline = time.monotonic() + 240
        try:
            for line in proc.stderr:
                seen.append(line)
                if f"paused before {step}" in line:
                    proc.send_signal(signal.SIGKILL)
                    break
                assert time.monotonic() < deadline, "build did not reach the pause point"
        finally:
            proc.kill()
            proc.wait(timeout=30)
    if not any(f"paused before {step}" in line for line in seen):
        pytest.fail("build ended before the pause point:\n" + "".join(seen))
    assert proc.returncode == -signal.SIGKILL
    return "".join(seen)


@pytest.mark.parametrize("step", ["manifest", "publish"])
def test_killed_build_leaves_previous_bundle_intact(
    tiny: TinyProject, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    code, first, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    before = tree_bytes(out)

    # Change an input so the killed build's stage differs from the published bundle.
    (tiny.root / "configs" / "model" / "v50.yaml").write_text("changed: true\n")
    printed = _kill_build_at(tiny, out, step)
    assert re.search(r"\[1/\d+\] wheelhouse", printed)

    assert tree_bytes(out) == before  # the previous bundle, byte for byte
    report = verify_bundle(out)
    assert report.ok and report.bundle_sha256 == first["bundle_sha256"]
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".bundle."))
    assert leftovers and all(".staging-" in name for name in leftovers)  # hidden, never at --out

    # The next build removes the dead build's stage and publishes the new content.
    code, second, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert second["bundle_sha256"] != first["bundle_sha256"]
    assert (out / "configs" / "model" / "v50.yaml").read_text() == "changed: true\n"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".bundle.")]
    assert json.loads((out / "MANIFEST.json").read_text())["bundle_sha256"] == second["bundle_sha256"]


def test_failed_build_removes_its_stage_and_keeps_the_old_bundle(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    code, first, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    (tiny.root / "configs" / "kaggle.json").write_text('{"username": "u", "key": "' + "0" * 32 + '"}\n')
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 3 and "credential" in data["what"]
    assert verify_bundle(out).bundle_sha256 == first["bundle_sha256"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".bundle.")]


def test_killed_first_build_leaves_no_bundle_at_all(tiny: TinyProject) -> None:
    out = tiny.root / "dist" / "bundle"
    _kill_build_at(tiny, out, "publish")
    assert not out.exists()  # no half-written bundle: only the hidden stage (and scratch) of the dead build
    assert {p.name.split("-")[0] for p in out.parent.iterdir()} == {".bundle.staging"}
