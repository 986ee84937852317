"""Target tag logic: which wheels the *target* interpreter accepts, best first.

Everything here is computed from the target profile (python, abi, platforms), never from the
interpreter running the bundler: the build machine is usually not the Kaggle image. pip and uv
match platform tags literally, so the profile lists every manylinux tag it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, generic_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bundler.errors import UsageError
from spectramind.config import TargetProfile

_MACHINES = ("x86_64", "aarch64", "i686", "ppc64le", "s390x", "armv7l")


@dataclass(frozen=True)
class TargetTags:
    """The target's supported tags, best first, with a rank lookup."""

    target: str
    tags: tuple[Tag, ...]
    rank: dict[Tag, int]

    def best_rank(self, tags: frozenset[Tag]) -> int | None:
        """Rank of the best tag of a wheel (lower is better); None when the target accepts none."""
        ranks = [self.rank[t] for t in tags if t in self.rank]
        return min(ranks) if ranks else None

    def key(self) -> str:
        """A stable text identity of the tag set (for cache keys)."""
        return ",".join(str(t) for t in self.tags)


def python_version(target: TargetProfile) -> tuple[int, int]:
    """The target's (major, minor) from ``target.python`` ("3.11" or "3.11.7")."""
    try:
        release = Version(str(target.python)).release
    except InvalidVersion:
        release = ()
    if len(release) < 2:
        raise UsageError(
            f"target python '{target.python}' is not a MAJOR.MINOR version",
            where=f"configs/target/{target.name}.yaml",
            fix='write python: "3.11" (quoted, so YAML keeps it a string)',
        )
    return release[0], release[1]


def target_tags(target: TargetProfile) -> TargetTags:
    """Every tag the target interpreter accepts, in pip's order of preference.

    CPython: cpXY-cpXY-plat, cpXY-abi3-plat, cpXY-none-plat, older cp3N-abi3-plat, then
    py3X-none-plat, py3-none-plat ... and finally py3-none-any.
    """
    if not target.platforms:
        raise UsageError(
            "target profile lists no platform tags",
            where=f"configs/target/{target.name}.yaml",
            fix="list every accepted platform tag under platforms: (e.g. manylinux_2_28_x86_64)",
        )
    major, minor = python_version(target)
    platforms = list(target.platforms)
    impl = (target.implementation or "cp").lower()
    if impl in ("cp", "cpython"):
        first = list(cpython_tags((major, minor), abis=[target.abi], platforms=platforms))
        interpreter = f"cp{major}{minor}"
    else:
        interpreter = f"{impl}{major}{minor}"
        first = list(generic_tags(interpreter, abis=[target.abi], platforms=platforms))
    rest = list(compatible_tags((major, minor), interpreter, platforms=platforms))
    ordered: list[Tag] = []
    seen: set[Tag] = set()
    for tag in first + rest:
        if tag not in seen:
            seen.add(tag)
            ordered.append(tag)
    return TargetTags(target=target.name, tags=tuple(ordered), rank={t: i for i, t in enumerate(ordered)})


def marker_environment(target: TargetProfile, full_version: str | None = None) -> dict[str, str]:
    """PEP 508 marker values for the target (Linux; machine taken from the platform tags)."""
    major, minor = python_version(target)
    machine = next((m for m in _MACHINES for p in target.platforms if p.endswith(m)), "x86_64")
    full = full_version if full_version and full_version.startswith(f"{major}.{minor}") else None
    impl = (target.implementation or "cp").lower()
    impl_name = "cpython" if impl in ("cp", "cpython") else impl
    return {
        "implementation_name": impl_name,
        "implementation_version": full or f"{major}.{minor}.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython" if impl_name == "cpython" else impl_name,
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": full or f"{major}.{minor}.0",
        "python_version": f"{major}.{minor}",
        "sys_platform": "linux",
        "extra": "",
    }


def marker_applies(marker: str | Marker | None, environment: dict[str, str]) -> bool:
    """Whether a PEP 508 marker holds on the target (no marker: always)."""
    if marker is None or marker == "":
        return True
    parsed = marker if isinstance(marker, Marker) else Marker(marker)
    return bool(parsed.evaluate(dict(environment)))


@dataclass(frozen=True)
class FileName:
    """A parsed distribution file name from an index page."""

    filename: str
    name: NormalizedName
    version: Version
    kind: str  # "wheel" | "sdist"
    tags: frozenset[Tag]


def parse_filename(filename: str) -> FileName | None:
    """Parse a wheel or sdist file name; None for anything else (eggs, .exe, odd names)."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            return FileName(filename, name, version, "wheel", tags)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return FileName(filename, name, version, "sdist", frozenset())
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def is_pure(filename: str) -> bool:
    """True for a wheel any Python 3 on any platform can install (``py3-none-any`` and kin)."""
    parsed = parse_filename(filename)
    if parsed is None or parsed.kind != "wheel":
        return False
    return all(
        t.abi == "none" and t.platform == "any" and t.interpreter.startswith("py") for t in parsed.tags
    )


def same_project(a: str, b: str) -> bool:
    return canonicalize_name(a) == canonicalize_name(b)
