"""What push decides before it sends anything: which kernels go with a bundle, how the version notes
name the commit, and which bundles it refuses. ``--dry-run`` throughout: nothing is sent."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spectramind.shim.manifest import MANIFEST_NAME, file_entries, seal
from tests import test_build as tb
from tests.test_build import _git, run_cli
from tests.test_push import make_bundle, push_env
from tests.test_secrets import KAGGLE_HEX

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny


def dry_run(bundle: Path, cwd: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "push", str(bundle), "--dry-run", "--json", *extra],
        cwd=cwd,
        env=push_env(tmp_path, None, creds="none"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_push_finds_the_kernels_of_a_bundle_built_outside_dist(
    tiny: tb.TinyProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With bundle.out=/tmp/x the kernels went to /tmp/kernels while push looked in dist/kernels."""
    out = tmp_path / "elsewhere" / "x"
    argv = ["build", "--config-dir", str(tiny.root / "configs"), *tiny.overrides(), f"bundle.out={out}"]
    code, data, err = run_cli(argv, capsys)
    assert code == 0, err
    assert data["bundle"] == str(out)
    assert [Path(k["path"]) for k in data["kernels"]] == [out.parent / "kernels" / "spectramind-v50-infer"]
    assert not (tiny.root / "dist").exists()

    code, pushed, err = dry_run(out, tiny.root, tmp_path)
    assert code == 0, err
    assert [k["name"] for k in pushed["kernels"]] == ["spectramind-v50-infer"]
    assert pushed["kernels"][0]["metadata"]["dataset_sources"] == ["spectramind/spectramind-v50-bundle"]


def test_push_marks_the_commit_dirty_while_the_checkout_has_changes(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "model.py").write_text("x = 1\n")
    _git(checkout, "init", "-q")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "-q", "-m", "one")
    bundle, _ = make_bundle(tmp_path)

    code, clean, err = dry_run(bundle, checkout, tmp_path)
    assert code == 0, err
    assert clean["dataset"]["version_notes"].endswith("git_commit=abc123")
    assert "warnings" not in clean and "dirty" not in err

    (checkout / "model.py").write_text("x = 2\n")  # edited, not committed
    code, dirty, err = dry_run(bundle, checkout, tmp_path)
    assert code == 0, err
    assert dirty["dataset"]["version_notes"].endswith("git_commit=abc123+dirty")
    assert "uncommitted change" in dirty["warnings"][0]
    assert "warning:" in err and "abc123+dirty" in err


def test_push_refuses_a_utf16_secret_added_after_the_build(tmp_path: Path) -> None:
    """A bundle edited after build (its manifest rewritten to match) still meets the secret scan."""
    bundle, _ = make_bundle(tmp_path)
    secret = f"# notes\r\nKAGGLE_KEY={KAGGLE_HEX}\r\n"
    (bundle / "configs").mkdir()
    (bundle / "configs" / "notes.txt").write_bytes(codecs.BOM_UTF16_LE + secret.encode("utf-16-le"))
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest = seal({**manifest, "files": file_entries(bundle)})
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))

    code, data, err = dry_run(bundle, tmp_path, tmp_path)
    assert code == 3
    assert data["error"] == "VerificationError" and "credential" in data["what"]
    assert "configs/notes.txt:2 (Kaggle key assignment)" in data["where"]
    assert KAGGLE_HEX not in err and KAGGLE_HEX not in json.dumps(data)
