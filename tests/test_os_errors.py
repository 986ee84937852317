"""Operating-system errors (disk full, read-only, permission denied, a missing input) on real file
systems: each is an error of the family with what/where/fix, exit 1, and one JSON object with --json.

The full and read-only file systems are tiny tmpfs mounts (root only: skipped elsewhere); permission
denied runs the command as ``nobody`` (root bypasses file permissions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import test_build as tb
from tests.test_cli import REPO, one_json, run

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny
NOBODY = 65534


@contextmanager
def tmpfs(path: Path, *options: str) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``path`` (``ro`` etc. in ``options``), unmounted afterwards."""
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def fill(fs: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 1024):
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return filler


def assert_os_error(proc: subprocess.CompletedProcess[str], code: str, where: Path) -> dict[str, Any]:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    data = one_json(proc)
    assert data["ok"] is False and data["error"] == "FileSystemError" and data["exit_code"] == 1
    assert f"({code})" in data["what"] and data["fix"]
    assert str(where) in data["where"], data
    for part in (data["what"], "where:", "fix:"):
        assert part in proc.stderr
    return data


def make_data(target: Path) -> list[str]:
    return [
        "spectramind.cli",
        "make-data",
        "--json",
        f"data.root={target}/data",
        f"env.output_dir={target}/out",
    ]


def test_disk_full_is_an_error_not_a_traceback_run_side(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full") as fs:
        fill(fs)
        proc = run(*make_data(fs), env={"HOME": str(tmp_path)})
        data = assert_os_error(proc, "ENOSPC", fs)
    assert "free space" in data["fix"]


def test_disk_full_build_is_an_error_and_leaves_nothing_behind(tiny: tb.TinyProject, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full") as fs:
        filler = fill(fs)
        filler.write_bytes(b"\0" * (64 * 1024 - 8192))  # room for the stage folder, not for the bundle
        proc = subprocess.run(
            [sys.executable, "-m", "bundler", *tiny.args(fs / "bundle", "--json")],
            cwd=tiny.root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert_os_error(proc, "ENOSPC", fs)
        # the stage was removed; the build's lock file beside --out stays by design (it never blocks)
        assert sorted(p.name for p in fs.iterdir()) == ["bundle.lock", "filler"]


def test_read_only_output_is_an_error_for_both_clis(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro") as fs:
        built = run("bundler", "build", "--json", "--out", str(fs / "bundle"), env={"HOME": str(tmp_path)})
        assert_os_error(built, "EROFS", fs)
        made = run(*make_data(fs), env={"HOME": str(tmp_path)})
        data = assert_os_error(made, "EROFS", fs)
    assert "writable location" in data["fix"]


def test_permission_denied_is_an_error_for_both_clis() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the command as nobody")
    shared = Path(tempfile.mkdtemp(prefix="spectramind-eacces-"))  # /tmp: nobody can reach it
    try:
        shared.chmod(0o755)  # readable by nobody, writable by root only
        as_nobody = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            "-m",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
        env.update(HOME=str(shared), SPECTRAMIND_CONFIG_DIR=str(REPO / "configs"))
        for argv in (
            ["bundler", "build", "--json", "--config-dir", str(REPO / "configs"), "--out", f"{shared}/sub/b"],
            make_data(shared),
        ):
            proc = subprocess.run(
                [*as_nobody, *argv],
                cwd=shared,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            data = assert_os_error(proc, "EACCES", shared)
            assert "access" in data["fix"]
        assert list(shared.iterdir()) == []
    finally:
        shutil.rmtree(shared)


def test_missing_input_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-configs"
    proc = run("bundler", "build", "--json", "--config-dir", str(missing), env={"HOME": str(tmp_path)})
    assert_os_error(proc, "ENOENT", missing)
    proc = run(
        "spectramind.cli", "score", "--json", "--submission", str(tmp_path), env={"HOME": str(tmp_path)}
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert one_json(proc)["where"] == str(tmp_path)  # a directory given for an input file
