"""CycloneDX SBOM (JSON, spec 1.6) of what the bundle installs, made with cyclonedx-python-lib.

Components: every wheel in the bundle (with its sha256 and how it got there) and the locked packages
the image already provides (``skipped``: installed by the image, not by the bundle). The document is
reproducible: its serial number is derived from its content and its timestamp is the build's
``created`` time.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from dataclasses import dataclass

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

SBOM_NAME = "sbom.cdx.json"
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


def make_sbom(*, bundle_name: str, version: str, packages: list[Package], created_epoch: int) -> str:
    """The SBOM as a JSON string (deterministic for the same inputs)."""
    ordered = sorted(packages, key=lambda p: (str(canonicalize_name(p.name)), p.version, p.origin))
    fingerprint = "\n".join(
        f"{p.name} {p.version} {p.origin} {p.sha256}" + (f" {p.extra}" if p.extra else "") for p in ordered
    )
    serial = uuid.uuid5(_NAMESPACE, f"{bundle_name} {version}\n{fingerprint}")
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


def sbom_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
