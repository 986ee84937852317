"""``python -m bundler verify``: every hash recomputed; exit 3 names each modified/missing/extra file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundler.cli import main as bundler_main
from spectramind.shim.manifest import MANIFEST_NAME, file_entries, seal
from tests.support.wheels import make_wheel


def _bundle(root: Path) -> Path:
    """A small bundle with a MANIFEST written by the shim's own functions."""
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text("a: 1\n")
    (root / "boot").mkdir()
    (root / "boot" / "shim.py").write_text("print('shim')\n")
    make_wheel(root / "wheels", "tinydep", "1.0")
    manifest = seal({"files": file_entries(root), "created": "x"})
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return root


def _verify(bundle: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    code = bundler_main(["verify", "--json", str(bundle)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_intact_bundle_verifies_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _bundle(tmp_path / "b")
    code, data, err = _verify(bundle, capsys)
    assert code == 0 and data["ok"] is True
    assert data["files"] == 3 and data["modified"] == data["missing"] == data["extra"] == []
    assert data["bundle_sha256"] == json.loads((bundle / MANIFEST_NAME).read_text())["bundle_sha256"]
    assert "bundle verified" in err and "files" in err


def test_each_modified_missing_and_extra_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle(tmp_path / "b")
    (bundle / "configs" / "config.yaml").write_text("a: 2\n")  # same size, other bytes
    (bundle / "boot" / "shim.py").unlink()
    (bundle / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
    code, data, err = _verify(bundle, capsys)
    assert code == 3 and data["ok"] is False
    assert data["modified"] == ["configs/config.yaml"]
    assert data["missing"] == ["boot/shim.py"]
    assert data["extra"] == ["wheels/evil-1.0-py3-none-any.whl"]
    for line in ("modified: configs/config.yaml", "missing:  boot/shim.py", "extra:    wheels/evil-1.0"):
        assert line in err


def test_tampered_manifest_and_no_manifest_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _bundle(tmp_path / "b")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["bundle_sha256"] = "0" * 64
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, data, _ = _verify(bundle, capsys)
    assert code == 3 and "bundle_sha256 does not match" in str(data["errors"])
    (bundle / MANIFEST_NAME).unlink()
    code, data, _ = _verify(bundle, capsys)
    assert code == 3 and data["errors"] == ["MANIFEST.json is missing"]


@pytest.mark.parametrize(("key", "value"), [("created", "2099-01-01"), ("target", {"python": "3.99"})])
def test_edited_manifest_metadata_fails_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object
) -> None:
    bundle = _bundle(tmp_path / "b")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest[key] = value  # the file list untouched: only the bundle hash over the metadata can tell
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, data, _ = _verify(bundle, capsys)
    assert code == 3 and "bundle_sha256 does not match the files and metadata" in str(data["errors"])


def test_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = _verify(tmp_path / "nope", capsys)
    assert code == 2 and "does not exist" in str(data["what"])


def test_verify_cli_subprocess_exit_codes(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b")
    ok = subprocess.run(
        [sys.executable, "-m", "bundler", "verify", str(bundle)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0 and ok.stdout == ""  # human output goes to stderr
    shutil.rmtree(bundle / "configs")
    bad = subprocess.run(
        [sys.executable, "-m", "bundler", "verify", str(bundle)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 3 and "missing:  configs/config.yaml" in bad.stderr
