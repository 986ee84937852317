"""The bundle's SBOMs, two formats of one package list: CycloneDX 1.6 JSON (made with
cyclonedx-python-lib) and SPDX 2.3 JSON (plain JSON: the format is small and the test validates it
against the official schema).

Entries: every wheel in the bundle (with its sha256, one of the lock's hashes, and how it got there)
and the locked packages the image already provides (``skipped``: installed by the image, not by the
bundle). Both documents are reproducible: their identifiers are derived from their content and their
time is the build's ``created`` time.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from dataclasses import dataclass

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from bundler.pack import created_iso

SBOM_NAME = "sbom.cdx.json"
SPDX_NAME = "sbom.spdx.json"
# Fixed namespace: serial numbers are uuid5 of the SBOM content, so rebuilds give the same one.
_NAMESPACE = uuid.UUID("5b1d0a52-51f6-4a43-9d4b-8f6c2b1e7a50")


@dataclass(frozen=True)
class Package:
    """One SBOM entry: a wheel the bundle installs (``sha256`` set) or a package the image provides."""

    name: str
    version: str
    origin: str  # index | built | project | image
    filename: str | None = None
    sha256: str | None = None
    extra: str | None = None  # the optional extra (bundle.extras) that brought it in


def _component(pkg: Package) -> Component:
    name = str(canonicalize_name(pkg.name))
    purl = PackageURL(type="pypi", name=name, version=pkg.version)
    properties = [Property(name="spectramind:origin", value=pkg.origin)]
    if pkg.filename:
        properties.append(Property(name="spectramind:filename", value=pkg.filename))
    if pkg.extra:
        properties.append(Property(name="spectramind:extra", value=pkg.extra))
    properties.append(
        Property(name="spectramind:installed-by", value="image" if pkg.origin == "image" else "bundle")
    )
    return Component(
        name=name,
        version=pkg.version,
        type=ComponentType.LIBRARY,
        purl=purl,
        bom_ref=purl.to_string(),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=pkg.sha256)] if pkg.sha256 else [],
        properties=properties,
    )


def _ordered(packages: list[Package]) -> list[Package]:
    return sorted(packages, key=lambda p: (str(canonicalize_name(p.name)), p.version, p.origin))


def _content_uuid(bundle_name: str, version: str, ordered: list[Package]) -> uuid.UUID:
    fingerprint = "\n".join(
        f"{p.name} {p.version} {p.origin} {p.sha256}" + (f" {p.extra}" if p.extra else "") for p in ordered
    )
    return uuid.uuid5(_NAMESPACE, f"{bundle_name} {version}\n{fingerprint}")


def make_sbom(*, bundle_name: str, version: str, packages: list[Package], created_epoch: int) -> str:
    """The CycloneDX SBOM as a JSON string (deterministic for the same inputs)."""
    ordered = _ordered(packages)
    serial = _content_uuid(bundle_name, version, ordered)
    root = Component(name=bundle_name, version=version, type=ComponentType.APPLICATION, bom_ref=bundle_name)
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(
            timestamp=datetime.datetime.fromtimestamp(created_epoch, tz=datetime.UTC),
            component=root,
        ),
    )
    components = []
    seen: set[str] = set()
    for pkg in ordered:
        component = _component(pkg)
        if str(component.bom_ref) in seen:
            continue
        seen.add(str(component.bom_ref))
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(root, components)
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    return text + "\n"


def _spdx_id(purl: str) -> str:
    """An SPDX element id for a package: ``SPDXRef-`` and the purl with [^A-Za-z0-9.-] made ``-``."""
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", purl.removeprefix("pkg:"))


def _spdx_package(pkg: Package, purl: str) -> dict[str, object]:
    by = "the image" if pkg.origin == "image" else "the bundle"
    via = f"; extra: {pkg.extra}" if pkg.extra else ""
    entry: dict[str, object] = {
        "SPDXID": _spdx_id(purl),
        "name": str(canonicalize_name(pkg.name)),
        "versionInfo": pkg.version,
        # The file came from bundle.index_url (or was built, or is the image's): no public URL asserted.
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "LIBRARY",
        "comment": f"origin: {pkg.origin}; installed by {by}{via}",
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
        ],
    }
    if pkg.filename:
        entry["packageFileName"] = pkg.filename
    if pkg.sha256:
        entry["checksums"] = [{"algorithm": "SHA256", "checksumValue": pkg.sha256}]
    return entry


def make_spdx(*, bundle_name: str, version: str, packages: list[Package], created_epoch: int) -> str:
    """The SPDX 2.3 SBOM as a JSON string, of the same packages as `make_sbom` (deterministic).

    The bundle is the described package; it CONTAINS what it installs and DEPENDS_ON what the image
    provides. ``documentNamespace`` carries the same content-derived UUID as the CycloneDX serial.
    """
    ordered = _ordered(packages)
    doc_uuid = _content_uuid(bundle_name, version, ordered)
    root_id = "SPDXRef-Bundle"
    packages_out: list[dict[str, object]] = [
        {
            "SPDXID": root_id,
            "name": bundle_name,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "APPLICATION",
        }
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id}
    ]
    seen: set[str] = set()
    for pkg in ordered:
        purl = PackageURL(type="pypi", name=str(canonicalize_name(pkg.name)), version=pkg.version).to_string()
        if purl in seen:
            continue
        seen.add(purl)
        entry = _spdx_package(pkg, purl)
        packages_out.append(entry)
        relationships.append(
            {
                "spdxElementId": root_id,
                "relationshipType": "DEPENDS_ON" if pkg.origin == "image" else "CONTAINS",
                "relatedSpdxElement": str(entry["SPDXID"]),
            }
        )
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{bundle_name}-{version}",
        "documentNamespace": f"https://spdx.org/spdxdocs/{bundle_name}-{version}-{doc_uuid}",
        "creationInfo": {
            "created": created_iso(created_epoch),  # as MANIFEST.json's
            "creators": ["Tool: spectramind-bundler"],
        },
        "packages": packages_out,
        "relationships": relationships,
    }
    return json.dumps(document, indent=2) + "\n"
