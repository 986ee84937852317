"""``bundle.extras``: a bundle ships an extra's packages only when asked, and records which extras are in.

The tiny project of test_build gets an extra ``fancy`` (``requirements-fancy.in``: fancy, which needs
the base's tinydep), locked by the real ``python -m bundler lock`` against the local index.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from spectramind.shim.install import parse_lock as boot_parse_lock
from tests import test_build as tb
from tests.support.wheels import make_wheel, sha256_file
from tests.test_build import TinyProject, run_cli, tree_bytes

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny


def add_extra(tiny: TinyProject, capsys: pytest.CaptureFixture[str]) -> Path:
    """requirements-fancy.in and its lock (made by the lock command: the base lock is kept)."""
    make_wheel(tiny.index_files, "fancy", "1.0", requires=["tinydep>=1"])
    (tiny.root / "requirements-fancy.in").write_text("fancy\n")
    base = (tiny.root / "requirements.lock").read_bytes()
    code, data, err = run_cli(
        ["lock", "--config-dir", str(tiny.root / "configs"), *tiny.overrides(), "bundle.extras=[fancy]"],
        capsys,
    )
    assert code == 0, err
    assert data["extras"][0]["pins"] == [{"name": "fancy", "version": "1.0"}]
    assert (tiny.root / "requirements.lock").read_bytes() == base
    return tiny.root / "requirements-fancy.lock"


def test_a_bundle_without_extras_is_unchanged_by_their_presence(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tiny.root / "dist" / "before"
    code, _, err = run_cli(tiny.args(before), capsys)
    assert code == 0, err
    add_extra(tiny, capsys)
    after = tiny.root / "dist" / "after"
    code, data, err = run_cli(tiny.args(after), capsys)
    assert code == 0, err
    assert tree_bytes(after) == tree_bytes(before)  # same files, same bytes: same bundle hash
    assert data["extras"] == [] and "extras" not in json.loads((after / "MANIFEST.json").read_text())


def test_extras_ship_their_packages_and_are_recorded(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    extra_lock = add_extra(tiny, capsys)
    out = tiny.root / "dist" / "bundle"
    code, data, err = run_cli(tiny.args(out, "bundle.extras=[fancy]"), capsys)
    assert code == 0, err
    assert (out / "site/lib/fancy/__init__.py").is_file() and (out / "site/lib/tinydep/__init__.py").is_file()
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["extras"] == [
        {
            "name": "fancy",
            "lock": "requirements-fancy.lock",
            "lock_sha256": sha256_file(extra_lock),
            "packages": [{"name": "fancy", "version": "1.0"}],
        }
    ]
    assert data["extras"] == manifest["extras"]
    assert ("fancy", "1.0") in [(d["name"], d["version"]) for d in manifest["site"]]
    # One lock ships: the base's pins, then the extra's; MANIFEST's lock_sha256 is the shipped file's.
    shipped = (out / "requirements.lock").read_bytes()
    assert shipped == (tiny.root / "requirements.lock").read_bytes() + extra_lock.read_bytes()
    assert manifest["lock_sha256"] == hashlib.sha256(shipped).hexdigest()
    assert [p.name for p in boot_parse_lock(shipped.decode())] == ["numpy", "tinydep", "fancy"]
    sbom = json.loads((out / "sbom.cdx.json").read_text())
    props = {c["name"]: {p["name"]: p["value"] for p in c["properties"]} for c in sbom["components"]}
    assert props["fancy"]["spectramind:extra"] == "fancy"
    assert "spectramind:extra" not in props["tinydep"]


def test_wheels_mode_ships_the_extras_wheels_and_their_pins(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    add_extra(tiny, capsys)
    out = tiny.root / "dist" / "bundle"
    code, _, err = run_cli(tiny.args(out, "bundle.install=wheels", "bundle.extras=[fancy]"), capsys)
    assert code == 0, err
    assert "fancy-1.0-py3-none-any.whl" in [p.name for p in (out / "wheels").iterdir()]
    # What boot's wheels mode installs: every pin of the shipped lock, fancy's with its hash.
    pins = {p.name: p for p in boot_parse_lock((out / "requirements.lock").read_text())}
    assert pins["fancy"].hashes == (sha256_file(tiny.index_files / "fancy-1.0-py3-none-any.whl"),)


def test_stale_missing_and_unknown_extras_are_refused_before_anything_is_written(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    (tiny.root / "requirements-fancy.in").write_text("fancy\n")
    code, data, _ = run_cli(tiny.args(out, "bundle.extras=[fancy]"), capsys)
    assert code == 1 and data["what"] == "the lock of extra 'fancy' does not exist"
    assert data["fix"] == "create it with `python -m bundler lock bundle.extras=[fancy]`"

    (tiny.root / "requirements-fancy.in").unlink()
    add_extra(tiny, capsys)
    (tiny.root / "requirements-fancy.in").write_text("fancy>=1\n")
    code, data, _ = run_cli(tiny.args(out, "bundle.extras=[fancy]"), capsys)
    assert code == 1 and "lock out of date: requirements-fancy.in changed" in data["what"]
    assert "python -m bundler lock bundle.extras=[fancy]" in data["fix"]

    code, data, _ = run_cli(tiny.args(out, "bundle.extras=[fanci]"), capsys)
    assert code == 2 and data["what"] == "unknown extra: fanci (known: fancy)"
    assert not out.exists()
