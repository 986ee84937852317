"""How a lock relates to the image: kept pins, deviations, and the image packages a delta breaks.

The kernel ends up with the image's packages overlaid by the bundle's delta (the locked pins the
image lacks at exactly that version). An image package whose ``Requires-Dist`` no longer holds
against that environment is a *casualty*: `casualties` names each one with the requirement that
breaks. Markers are evaluated for the *target* (``bundler.tags.marker_environment``), never for
this machine. The rule is the build's clobber check (``bundler.clobber``): one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from packaging.utils import canonicalize_name

from bundler.clobber import Casualty, Installed, find_casualties
from bundler.image import ImageManifest


@dataclass(frozen=True)
class Deviation:
    """An image package the lock pins at another version, and what asked for it (``# via``)."""

    name: str
    image_version: str
    locked_version: str
    required_by: tuple[str, ...]


@dataclass(frozen=True)
class ImageReport:
    """The lock seen against the image."""

    image: str
    kept: tuple[str, ...]  # locked at the image's version (skipped by the wheelhouse)
    added: tuple[str, ...]  # locked, not in the image
    deviations: tuple[Deviation, ...]
    casualties: tuple[Casualty, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "kept": list(self.kept),
            "added": list(self.added),
            "deviations": [asdict(d) | {"required_by": list(d.required_by)} for d in self.deviations],
            "casualties": [
                {
                    "package": c.package,
                    "version": c.version,
                    "requires": c.requires,
                    "conflicts_with": c.conflicts_with,
                    "locked_version": c.installed_version,
                }
                for c in self.casualties
            ],
        }

    def messages(self) -> list[str]:
        out = [
            f"warning: image {self.image} has {d.name} {d.image_version}; the lock pins {d.locked_version} "
            f"(required by: {', '.join(d.required_by) or 'unknown'})"
            for d in self.deviations
        ]
        out += [
            f"  breaks {c.package} {c.version}: it requires '{c.requires}', "
            f"the bundle installs {c.conflicts_with}=={c.installed_version}"
            for c in self.casualties
        ]
        return out


def delta(image: ImageManifest, pins: Mapping[str, str]) -> dict[str, str]:
    """The pins the image lacks at exactly that version: what the bundle installs over it."""
    return {
        str(canonicalize_name(name)): version
        for name, version in pins.items()
        if not image.has(name, version)
    }


def casualties(image: ImageManifest, changes: Mapping[str, str], env: Mapping[str, str]) -> list[Casualty]:
    """Image packages whose Requires-Dist the locked ``changes`` break (`bundler.clobber`'s rule)."""
    overlay = {name: Installed(name, version, (), "bundle") for name, version in changes.items()}
    return find_casualties(image, overlay, dict(env))


def analyse(
    image: ImageManifest,
    pins: Mapping[str, str],
    via: Mapping[str, tuple[str, ...]],
    env: Mapping[str, str],
) -> ImageReport:
    """Kept, added and deviating pins of a lock, and every image package the delta breaks."""
    kept, added, deviations = [], [], []
    for name, version in sorted(pins.items()):
        dist = image.get(name)
        if dist is None:
            added.append(name)
        elif image.has(name, version):
            kept.append(name)
        else:
            deviations.append(Deviation(name, dist.version, version, tuple(via.get(name, ()))))
    return ImageReport(
        image=image.name,
        kept=tuple(kept),
        added=tuple(added),
        deviations=tuple(deviations),
        casualties=tuple(casualties(image, delta(image, pins), env)),
    )
