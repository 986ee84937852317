"""Clobber check: does the bundle's delta break a package the Kaggle image already has?

The kernel ends up with the image's distributions, with every delta wheel replacing (or adding to)
them. Each installed distribution's ``Requires-Dist`` (markers evaluated for the target, no extras)
is checked against that final environment:

- an image package whose requirement held before the delta and fails after it is a casualty
  ("numba 0.60.0 requires numpy<2.1,>=1.22 but the bundle installs numpy 2.4.0");
- a delta package whose requirement fails in the final environment is a casualty too.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import BundlerError
from bundler.image import ImageManifest


@dataclass(frozen=True)
class Installed:
    """A distribution of the final environment and where it comes from ("image" or "bundle")."""

    name: str
    version: str
    requires: tuple[str, ...]
    origin: str


def wheel_metadata(wheel: Path) -> str:
    """A wheel's ``*.dist-info/METADATA`` text ("" when it has none)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        return zf.read(names[0]).decode("utf-8", "replace") if names else ""


def wheel_requires(wheel: Path) -> tuple[str, ...]:
    """``Requires-Dist`` of a wheel, read from its ``*.dist-info/METADATA``."""
    return metadata_requires(wheel_metadata(wheel))


def metadata_requires(text: str) -> tuple[str, ...]:
    """``Requires-Dist`` of a core metadata file (a wheel's METADATA, an index's ``.metadata``)."""
    headers = HeaderParser().parsestr(text, headersonly=True)
    return tuple(headers.get_all("Requires-Dist") or ())


def final_environment(image: ImageManifest, delta: dict[str, Installed]) -> dict[str, Installed]:
    """The image's distributions with the delta's versions replacing theirs (canonical names)."""
    env = {key: Installed(d.name, d.version, d.requires, "image") for key, d in image.distributions.items()}
    env.update({str(canonicalize_name(k)): v for k, v in delta.items()})
    return env


def _applies(req: Requirement, environment: dict[str, str]) -> bool:
    if req.marker is None:
        return True
    try:
        return bool(req.marker.evaluate(dict(environment)))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _satisfied(req: Requirement, dist: Installed | None) -> bool | None:
    """True/False, or None when the installed version cannot be compared."""
    if dist is None:
        return False
    try:
        Version(dist.version)
    except InvalidVersion:
        return None
    return req.specifier.contains(dist.version, prereleases=True)


@dataclass(frozen=True)
class Casualty:
    """``package version`` requires ``requires``, which the final environment no longer satisfies."""

    package: str
    version: str
    requires: str
    conflicts_with: str
    installed_version: str | None  # what the final environment has (None: nothing)
    installed_origin: str | None  # "bundle" or "image"

    def sentence(self) -> str:
        head = f"{self.package} {self.version} requires {self.requires} but"
        if self.installed_version is None:
            return f"{head} neither the image nor the bundle has it"
        where = "the bundle installs" if self.installed_origin == "bundle" else "the image has"
        return f"{head} {where} {self.conflicts_with} {self.installed_version}"


def find_casualties(
    image: ImageManifest, delta: dict[str, Installed], marker_env: dict[str, str]
) -> list[Casualty]:
    """Every requirement of the final environment (image + ``delta``) that the delta breaks."""
    before = final_environment(image, {})
    after = final_environment(image, delta)
    found: list[Casualty] = []
    for key, dist in sorted(after.items()):
        for text in dist.requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if not _applies(req, marker_env):
                continue
            dep_key = str(canonicalize_name(req.name))
            if dep_key == key:
                continue
            now = after.get(dep_key)
            if _satisfied(req, now) is not False:
                continue
            if dist.origin == "image" and _satisfied(req, before.get(dep_key)) is False:
                continue  # already broken in the image itself: not the bundle's doing
            found.append(
                Casualty(
                    package=dist.name,
                    version=dist.version,
                    requires=f"{req.name}{req.specifier}",
                    conflicts_with=now.name if now else req.name,
                    installed_version=now.version if now else None,
                    installed_origin=now.origin if now else None,
                )
            )
    return found


def casualties(image: ImageManifest, delta: dict[str, Installed], marker_env: dict[str, str]) -> list[str]:
    """One sentence per requirement the delta breaks, sorted."""
    return sorted({c.sentence() for c in find_casualties(image, delta, marker_env)})


def check_clobber(
    image: ImageManifest,
    delta: dict[str, Installed],
    marker_env: dict[str, str],
    *,
    allow: bool,
    where: str,
) -> list[str]:
    """Raise naming every casualty, or (``allow``) return them as warnings."""
    broken = casualties(image, delta, marker_env)
    if broken and not allow:
        raise BundlerError(
            f"the bundle would break {len(broken)} requirement(s) of the final environment "
            f"(image {image.name} + bundle):\n  " + "\n  ".join(broken),
            where=where,
            fix="relax requirements.in so the lock keeps the image's versions and re-lock, "
            "or build with --allow-clobber (bundle.allow_clobber=true) to accept the breakage",
        )
    return [f"clobber: {line}" for line in broken]
