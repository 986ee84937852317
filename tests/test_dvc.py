"""Weights through DVC: a real repository (git + dvc init) with a local-directory remote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bundler import dvc
from bundler.errors import BundlerError
from tests import test_build as tb
from tests.test_build import TinyProject, run_cli, tree_bytes

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny
WEIGHTS = bytes(range(256)) * 16


def _sh(root: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=dvc._env())


def make_dvc_repo(root: Path, remote: Path | None) -> Path:
    """git + dvc repo with weights/v50.pt tracked by DVC and pushed to ``remote`` (when given)."""
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "v50.pt").write_bytes(WEIGHTS)
    _sh(root, "git", "init", "-q")
    _sh(root, "dvc", "init", "-q")
    if remote is not None:
        remote.mkdir(parents=True, exist_ok=True)
        _sh(root, "dvc", "remote", "add", "-d", "store", str(remote))
    dvc.track(root, "weights/v50.pt")
    if remote is not None:
        _sh(root, "dvc", "push", "-q")
    return root


def _forget_local(root: Path) -> None:
    """A fresh checkout: no workspace copy and no local DVC cache."""
    (root / "weights" / "v50.pt").unlink()
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)


def test_missing_weights_are_pulled_from_the_remote(tmp_path: Path) -> None:
    root = make_dvc_repo(tmp_path / "repo", tmp_path / "remote")
    assert (root / "weights" / "v50.pt.dvc").is_file()
    assert (root / "weights" / ".gitignore").read_text().strip() == "/v50.pt"
    _forget_local(root)
    statuses = dvc.ensure_weights(root, ["weights"])
    assert [(s.path, s.state, s.dvc_file) for s in statuses] == [
        ("weights/v50.pt", "pulled", "weights/v50.pt.dvc")
    ]
    assert (root / "weights" / "v50.pt").read_bytes() == WEIGHTS
    # A file in the weights directory that no pointer covers is reported (it is packed too).
    (root / "weights" / "notes.json").write_text("{}")
    states = {s.path: s.state for s in dvc.ensure_weights(root, ["weights"])}
    assert states == {"weights/v50.pt": "tracked", "weights/notes.json": "untracked"}
    (root / "weights" / "notes.json").unlink()
    # Edited in the workspace: "modified".
    (root / "weights" / "v50.pt").write_bytes(b"retrained")
    assert dvc.ensure_weights(root, ["weights"])[0].state == "modified"


def test_no_remote_configured_is_a_clear_error(tmp_path: Path) -> None:
    root = make_dvc_repo(tmp_path / "repo", None)
    _forget_local(root)
    with pytest.raises(BundlerError) as info:
        dvc.ensure_weights(root, ["weights"])
    error = info.value
    assert "no DVC remote is configured" in error.what and "weights/v50.pt" in error.what
    assert error.fix is not None and "dvc remote add" in error.fix


def test_remote_without_the_file_is_a_clear_error(tmp_path: Path) -> None:
    root = make_dvc_repo(tmp_path / "repo", tmp_path / "remote")
    _forget_local(root)
    shutil.rmtree(tmp_path / "remote")
    (tmp_path / "remote").mkdir()
    with pytest.raises(BundlerError) as info:
        dvc.ensure_weights(root, ["weights"])
    error = info.value
    assert "could not pull the weights from remote store" in error.what
    assert str(tmp_path / "remote") in error.what and "weights/v50.pt" in error.what
    assert error.fix is not None and "dvc push" in error.fix


def test_untracked_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "plain.pt").write_bytes(b"x")
    assert dvc.ensure_weights(tmp_path, ["weights"])[0].state == "untracked"
    with pytest.raises(BundlerError, match="weights entry 'models' is absent: no such path"):
        dvc.ensure_weights(tmp_path, ["models"])
    assert dvc.ensure_weights(tmp_path, ["models"], allow_missing=True)[0].state == "missing"


def test_missing_weights_fail_the_build_unless_allowed(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the weights file and its .dvc pointer gone, the build once exited 0 with no weights/."""
    (tiny.root / "weights" / "v50.pt").unlink()
    (tiny.root / "weights" / ".gitignore").write_text("/v50.pt\n")  # what `dvc add` leaves behind
    out = tiny.root / "dist" / "bundle"
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 1 and data["error"] == "BundlerError"
    assert "weights entry 'weights' is absent: the folder holds no weights file" in data["what"]
    assert data["where"] == str(tiny.root / "weights") and "allow_missing_weights=true" in data["fix"]
    assert not out.exists()

    tiny.extra = ["bundle.allow_missing_weights=true"]
    code, data, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert data["weights"] == [{"path": "weights", "state": "missing", "dvc_file": None}]
    assert any("weights entry weights is absent" in w and "degraded" in w for w in data["warnings"])
    assert not (out / "weights").exists()


def test_fresh_checkout_build_pulls_weights_and_packs_no_dvc_metadata(
    tiny: TinyProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    _sh(tiny.root, "dvc", "init", "-q")
    _sh(tiny.root, "dvc", "remote", "add", "-d", "store", str(remote))
    _sh(tiny.root, "git", "rm", "-q", "--cached", "weights/v50.pt")
    dvc.track(tiny.root, "weights/v50.pt")
    _sh(tiny.root, "dvc", "push", "-q")
    tb._git(tiny.root, "add", "-A")
    tb._git(tiny.root, "commit", "-q", "-m", "track weights with dvc")
    first = tiny.root / "dist" / "bundle"
    code, data, err = run_cli(tiny.args(first), capsys)
    assert code == 0, err
    assert data["weights"] == [
        {"path": "weights/v50.pt", "state": "tracked", "dvc_file": "weights/v50.pt.dvc"}
    ]

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tiny.root), str(clone)], check=True)
    assert not (clone / "weights" / "v50.pt").exists()  # git has only the pointer
    other = TinyProject(clone, tiny.index_files, tiny.cache, index=tiny.index)
    second = tmp_path / "out2" / "bundle"
    code, data2, err = run_cli(other.args(second), capsys)
    assert code == 0, err
    assert data2["weights"][0]["state"] == "pulled"
    assert tree_bytes(second) == tree_bytes(first)
    packed = sorted(p.name for p in (second / "weights").iterdir())
    assert packed == ["v50.pt"]  # no .dvc pointer, no .gitignore
