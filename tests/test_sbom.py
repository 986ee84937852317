"""The CycloneDX SBOM: schema-valid, complete, reproducible, and what the build packs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bundler.sbom import Package, make_sbom
from tests import test_build as tb
from tests.test_build import TinyProject, run_cli

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny
PACKAGES = [
    Package("Hydra_Core", "1.3.2", "index", "hydra_core-1.3.2-py3-none-any.whl", "a" * 64),
    Package(
        "antlr4-python3-runtime", "4.9.3", "built", "antlr4_python3_runtime-4.9.3-py3-none-any.whl", "b" * 64
    ),
    Package("spectramind", "0.5.0", "project", "spectramind-0.5.0-py3-none-any.whl", "c" * 64),
    Package("numpy", "2.1.3", "image"),
]


def _doc(packages: list[Package], epoch: int = 1700000000) -> dict[str, object]:
    text = make_sbom(
        bundle_name="spectramind-v50-bundle", version="0.5.0", packages=packages, created_epoch=epoch
    )
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert errors is None, errors
    data: dict[str, object] = json.loads(text)
    return data


def test_components_purls_hashes_and_origin() -> None:
    doc = _doc(PACKAGES)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    comps = {c["name"]: c for c in doc["components"]}  # type: ignore[attr-defined]
    assert sorted(comps) == ["antlr4-python3-runtime", "hydra-core", "numpy", "spectramind"]
    assert comps["hydra-core"]["purl"] == "pkg:pypi/hydra-core@1.3.2"
    assert comps["hydra-core"]["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    props = {p["name"]: p["value"] for p in comps["numpy"]["properties"]}
    assert props == {"spectramind:origin": "image", "spectramind:installed-by": "image"}
    assert "hashes" not in comps["numpy"]
    built = {p["name"]: p["value"] for p in comps["antlr4-python3-runtime"]["properties"]}
    assert built["spectramind:origin"] == "built" and built["spectramind:installed-by"] == "bundle"
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"  # type: ignore[index]


def test_reproducible_and_order_independent() -> None:
    assert _doc(PACKAGES) == _doc(list(reversed(PACKAGES)))
    changed = _doc([*PACKAGES[:3], Package("numpy", "2.2.0", "image")])
    assert changed["serialNumber"] != _doc(PACKAGES)["serialNumber"]


def test_build_packs_an_sbom_of_wheels_and_image_packages(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    code, _, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    text = (out / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    comps = {c["name"]: c for c in json.loads(text)["components"]}
    assert sorted(comps) == ["numpy", "spectramind", "tinydep"]
    wheel = tiny.index_files / "tinydep-1.0-py3-none-any.whl"  # the locked file, as installed in site/
    assert comps["tinydep"]["hashes"][0]["content"] == tb.sha256_file(wheel)
    assert str(Path(tiny.root)) not in text
