"""Atomic publish: a build SIGKILLed midway leaves the previous bundle whole, and no half bundle.

The build subprocess is paused at a step by the explicit test hook
``SPECTRAMIND_TEST_BUILD_PAUSE_AT=<step>`` (it prints a line and sleeps), then killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
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
    assert not out.exists()  # no half-written bundle: only the hidden stage of the dead build
    # (and the build lock's file, which the kernel unlocked when the build died)
    assert {p.name.split("-")[0] for p in out.parent.iterdir()} == {".bundle.staging", "bundle.lock"}


def test_second_build_into_the_same_out_is_refused_at_once(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two builds into one --out once raced (last finisher won, both reported success)."""
    out = tiny.root / "dist" / "bundle"
    env = {**os.environ, PAUSE_ENV: "configs", f"{PAUSE_ENV}_S": "120"}
    with subprocess.Popen(
        [sys.executable, "-m", "bundler", *tiny.args(out)],
        cwd=tiny.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as first:
        assert first.stderr is not None
        try:
            for line in first.stderr:
                if "paused before configs" in line:
                    break
            else:
                pytest.fail("the first build ended before the pause point")
            started = time.monotonic()
            code, data, _ = run_cli(tiny.args(out), capsys)
            assert time.monotonic() - started < 30  # refused at once, not after waiting
            assert (
                code == 1
                and f"another build is writing this bundle right now (pid {first.pid})" in data["what"]
            )
            assert str(out) in data["where"] and not out.exists()
        finally:
            first.kill()
            first.wait(timeout=30)
    # The killed holder's lock died with it: the next build goes through.
    code, data, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert verify_bundle(out).ok and (out.parent / "bundle.lock").is_file()


def test_killed_builds_temp_dirs_are_removed_by_the_next_build(
    tiny: TinyProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    with subprocess.Popen(["true"]) as gone:
        gone.wait()
    dead, live = gone.pid, os.getpid()
    out = tiny.root / "dist" / "bundle"
    out.parent.mkdir(parents=True)
    stale = [
        system_tmp / f"spectramind-projectwheel-{dead}-a1b2",
        system_tmp / f"wheelhouse-build-{dead}-c3d4",
        system_tmp / f"sdist-build-{dead}-e5f6",
        out.parent / f".kernels.staging-{dead}-g7h8",
        tiny.cache / "site-trees" / f".partial-{dead}-o5p6",
        tiny.cache / "project-wheels" / f".store-{dead}-q7r8",
    ]
    kept = [
        system_tmp / f"wheelhouse-build-{live}-i9j0",  # a build running now
        system_tmp / "spectramind-projectwheel-k1l2",  # no pid in its name: not ours to judge
        system_tmp / f"unrelated-{dead}-m3n4",
        tiny.cache / "site-trees" / f".partial-{live}-s9t0",
    ]
    for folder in stale + kept:
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "file").write_text("left by a killed build\n")
    code, _, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert [p for p in stale if p.exists()] == []
    assert [p for p in kept if p.exists()] == kept
    assert not [p for p in system_tmp.iterdir() if p not in kept]  # the build's own temp dirs are gone
    shutil.rmtree(kept[-1])  # the shared cache stays clean for the other tests
