"""The SBOMs (CycloneDX and SPDX): schema-valid, complete, reproducible, and what the build packs.

tests/data/spdx-schema-2.3.json is the official SPDX 2.3 JSON schema, unchanged: spdx/spdx-spec,
schemas/spdx-schema.json at commit 8a595028b0386138c84f7188237787c374f6a6cf (title "SPDX 2.3").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bundler.sbom import Package, make_sbom, make_spdx
from tests import test_build as tb
from tests.test_build import TinyProject, run_cli

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny
SPDX_SCHEMA = json.loads((Path(__file__).parent / "data" / "spdx-schema-2.3.json").read_text("utf-8"))
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


def _spdx(packages: list[Package], epoch: int = 1700000000) -> dict[str, Any]:
    text = make_spdx(
        bundle_name="spectramind-v50-bundle", version="0.5.0", packages=packages, created_epoch=epoch
    )
    data: dict[str, Any] = json.loads(text)
    jsonschema.validate(data, SPDX_SCHEMA)
    return data


def test_spdx_packages_purls_checksums_and_relationships() -> None:
    doc = _spdx(PACKAGES)
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    pkgs = {p["name"]: p for p in doc["packages"]}
    assert sorted(pkgs) == [
        "antlr4-python3-runtime",
        "hydra-core",
        "numpy",
        "spectramind",
        "spectramind-v50-bundle",
    ]
    hydra = pkgs["hydra-core"]
    assert hydra["versionInfo"] == "1.3.2" and hydra["downloadLocation"] == "NOASSERTION"
    purl = "pkg:pypi/hydra-core@1.3.2"
    assert hydra["externalRefs"] == [
        {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
    ]
    assert hydra["checksums"] == [{"algorithm": "SHA256", "checksumValue": "a" * 64}]
    assert "checksums" not in pkgs["numpy"]  # the image's file: no hash of ours to state
    ids = {p["name"]: p["SPDXID"] for p in doc["packages"]}
    rels = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]
    }
    root = ids["spectramind-v50-bundle"]
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", root) in rels
    assert (root, "CONTAINS", ids["hydra-core"]) in rels and (root, "DEPENDS_ON", ids["numpy"]) in rels
    assert len(set(ids.values())) == len(ids)  # element ids are unique


def test_spdx_reproducible_and_matches_the_cyclonedx_serial() -> None:
    doc = _spdx(PACKAGES)
    assert doc == _spdx(list(reversed(PACKAGES)))
    serial = str(_doc(PACKAGES)["serialNumber"]).removeprefix("urn:uuid:")
    assert doc["documentNamespace"].endswith(serial)
    changed = _spdx([*PACKAGES[:3], Package("numpy", "2.2.0", "image")])
    assert changed["documentNamespace"] != doc["documentNamespace"]


def test_spdx_schema_rejects_a_document_without_a_namespace() -> None:
    """The committed schema really constrains: the validation above could not pass vacuously."""
    doc = _spdx(PACKAGES)
    del doc["documentNamespace"]
    with pytest.raises(jsonschema.ValidationError, match="documentNamespace"):
        jsonschema.validate(doc, SPDX_SCHEMA)


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
    spdx = json.loads((out / "sbom.spdx.json").read_text())
    jsonschema.validate(spdx, SPDX_SCHEMA)
    pkgs = {p["name"]: p for p in spdx["packages"]}
    assert sorted(pkgs) == ["numpy", "spectramind", "spectramind-v50-bundle", "tinydep"]
    assert pkgs["tinydep"]["checksums"][0]["checksumValue"] == tb.sha256_file(wheel)
    assert spdx["creationInfo"]["created"] == json.loads((out / "MANIFEST.json").read_text())["created"]
