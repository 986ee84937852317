"""A cp312 bundle boots in the sandbox on a cp311 build machine: the image env runs Python 3.12."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundler import sandbox
from bundler.interpreters import find_python
from tests.support.bundles import BundleSpec, Pin, make_bundle, running_target
from tests.support.images import image_manifest
from tests.test_simulate import SimKit

pytestmark = [
    pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable())),
    pytest.mark.skipif(find_python("3.12") is None, reason="no Python 3.12 on this machine"),
]


def test_cp312_bundle_boots_with_the_image_python(tmp_path: Path) -> None:
    kit = SimKit(tmp_path / "kit")
    dists = [
        {"name": "imgpkg", "version": "1.0", "requires_dist": ["imgdep>=1"]},
        {"name": "imgdep", "version": "3.0", "requires_dist": []},
        {"name": "torch", "version": "2.10.0+cpu", "requires_dist": []},  # only the real image has it
    ]
    kit.image.write_text(
        json.dumps(image_manifest("img312", dists, python="3.12.1", glibc=None, platforms=["any"]))
    )
    target = {**running_target(), "python": "3.12", "abi": "cp312"}
    pins = [Pin("alpha", "1.0", kit.alpha), Pin("imgpkg", "1.0", kit.imgpkg, ship=False)]
    bundle = make_bundle(
        tmp_path / "bundle", BundleSpec(pins=pins, spectramind=kit.spectramind, target=target, pyc=False)
    )
    out = tmp_path / "working"
    proc, data = kit.simulate(bundle, out, "--command", "spectramind test")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert str(summary["python"]).startswith("3.12.")  # the kernel ran the image's Python
    assert data["image_env"]["packages"] == 2  # imgpkg and imgdep, installed into a 3.12 venv
    assert list(Path(data["image_env"]["path"]).glob("lib/python3.12/site-packages/imgpkg"))

    # A bundle that relies on the image's own torch build: the sandbox says so by name.
    torch = Pin("torch", "2.10.0", kit.alpha, ship=False)
    needs_torch = make_bundle(
        tmp_path / "torch-bundle",
        BundleSpec(pins=[*pins, torch], spectramind=kit.spectramind, target=target, pyc=False),
    )
    proc, _ = kit.simulate(needs_torch, tmp_path / "payload")
    assert proc.returncode == 2
    assert "cannot recreate image package(s) torch==2.10.0+cpu" in proc.stderr
    assert 'boot without the payload: --command "spectramind test"' in " ".join(proc.stderr.split())
