"""bundler/image.py: image manifests load, match pins (local labels), and fail clearly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bundler.errors import EXIT_USAGE, UsageError
from bundler.image import load_image, load_image_file
from spectramind.config import compose, target_profile


def _manifest(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "schema": 1,
        "name": "tiny",
        "python": {"version": "3.11.7", "implementation": "cpython", "abi": "cp311"},
        "platform": {"glibc": "2.36", "platforms": ["manylinux_2_36_x86_64", "manylinux1_x86_64"]},
        "cuda": {"driver": None, "runtime": None},
        "distributions": [
            {"name": "torch", "version": "2.13.0+cpu", "requires_dist": ["filelock"]},
            {"name": "PyYAML", "version": "6.0.3", "requires_dist": []},
            {"name": "odd", "version": "not-pep440"},
        ],
    }
    data.update(overrides)
    return data


def _write(directory: Path, name: str, data: object) -> Path:
    path = directory / "images" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_pins_match_including_local_labels(tmp_path: Path) -> None:
    path = _write(tmp_path, "tiny", _manifest())
    image = load_image(tmp_path, "tiny")
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert image.has("torch", "2.13.0")  # the lock's public pin matches the image's +cpu build
    assert image.has("torch", "2.13.0+cpu")
    assert not image.has("torch", "2.13.1")
    assert not image.has("torch", "2.13.0+cu121")  # a different local build is a different file
    assert image.has("pyyaml", "6.0.3") and image.get("PyYAML") is image.get("PYYAML")
    assert image.has("odd", "not-pep440") and not image.has("odd", "1.0")
    assert image.get("odd") is not None and image.get("odd").requires == ()  # type: ignore[union-attr]
    assert not image.has("absent", "1.0")


def test_unknown_name_lists_known_manifests(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", _manifest())
    with pytest.raises(UsageError) as info:
        load_image(tmp_path, "beta")
    assert info.value.exit_code == EXIT_USAGE
    assert "unknown image manifest 'beta'" in info.value.what
    assert "alpha" in (info.value.fix or "") and "probe" in (info.value.fix or "")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({k: v for k, v in _manifest().items() if k != "python"}), "missing 'python'"),
        (json.dumps(_manifest(distributions=[{"version": "1"}])), "missing 'name'"),
    ],
)
def test_malformed_manifest_is_a_usage_error(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        load_image_file(path)
    assert expected in info.value.what and info.value.where == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_image_file(tmp_path / "nope.json")


def test_shipped_sim_manifest_matches_its_recipe_and_target(repo: Path) -> None:
    """kaggle-sim-cp311.json is what its requirements.txt recreates, and fits its target profile."""
    images = repo / "configs" / "images"
    image = load_image(repo / "configs", "kaggle-sim-cp311")
    assert "SIMULATION" in json.loads((images / "kaggle-sim-cp311.json").read_text())["note"]
    pins = [
        line.split("==")
        for line in (images / "kaggle-sim-cp311.requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert {n.lower() for n, _ in pins} >= {"torch", "numpy", "pandas", "scipy", "pyarrow", "pyyaml"}
    for name, version in pins:
        assert image.has(name, version), f"{name}=={version} missing from the manifest"
    assert image.get("torch").version == "2.13.0+cpu"  # type: ignore[union-attr]
    target = target_profile(compose(["target=kaggle-sim-cp311"], repo / "configs"))
    assert target.image == image.name
    assert image.python.startswith(target.python) and image.abi == target.abi
    assert set(target.platforms) <= set(image.platforms)
    assert image.glibc == target.glibc
