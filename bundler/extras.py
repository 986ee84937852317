"""Optional extras: groups of run-side packages a bundle ships only when ``bundle.extras`` names them.

An extra ``NAME`` is the file ``requirements-NAME.in`` beside ``requirements.in`` (the same stem, so
``--in deps.in`` pairs with ``deps-NAME.in``). ``python -m bundler lock bundle.extras=[NAME]`` resolves
it *against the base lock*: every package the base lock pins is a hard constraint, so versions agree,
and ``requirements-NAME.lock`` (beside the base lock) holds only the pins the extra adds. Its header
records the extra's name and the sha256 of the base lock it extends, so a re-locked base dates it.

The base lock and a bundle without extras do not change when extras exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.errors import BundlerError, UsageError
from bundler.lockfile import Lock, check_fresh, check_target, parse_lock

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Extra:
    """One asked-for extra: its requirements file and its lock."""

    name: str
    requirements_in: Path
    lock: Path


def lock_command(names: list[str] | tuple[str, ...]) -> str:
    """The command that (re-)locks these extras (and the base lock, when it is out of date)."""
    return f"python -m bundler lock bundle.extras=[{','.join(names)}]"


def _sibling(path: Path, name: str) -> Path:
    return path.with_name(f"{path.stem}-{name}{path.suffix}")


def known(requirements_in: Path) -> list[str]:
    """The extras defined beside ``requirements_in``: every ``<stem>-NAME<suffix>`` file."""
    stem, suffix = requirements_in.stem, requirements_in.suffix
    found = (
        p.name[len(stem) + 1 : len(p.name) - len(suffix)]
        for p in requirements_in.parent.glob(f"{stem}-*{suffix}")
    )
    return sorted(n for n in found if _NAME.match(n))


def resolve(names: list[str], requirements_in: Path, lock: Path) -> tuple[Extra, ...]:
    """The asked extras (sorted, once each); an unknown name is a usage error listing the known ones."""
    defined = known(requirements_in)
    unknown = sorted({n for n in names if n not in defined})
    if unknown:
        listing = ", ".join(defined) if defined else "none"
        raise UsageError(
            f"unknown extra{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} (known: {listing})",
            where=f"bundle.extras (extras are the {requirements_in.stem}-NAME{requirements_in.suffix} "
            f"files in {requirements_in.parent})",
            fix=f"use one of the known extras, or create {_sibling(requirements_in, unknown[0]).name} "
            "listing its packages and lock it",
        )
    return tuple(Extra(n, _sibling(requirements_in, n), _sibling(lock, n)) for n in sorted(set(names)))


def load(extra: Extra, base: Lock, target: str, image: str, image_sha256: str) -> Lock:
    """The extra's lock, checked fresh against its requirements file, the target and the base lock."""
    relock = f"re-lock it with `{lock_command([extra.name])}`"
    if not extra.lock.is_file():
        raise BundlerError(
            f"the lock of extra '{extra.name}' does not exist",
            where=str(extra.lock),
            fix=f"create it with `{lock_command([extra.name])}`",
        )
    parsed = parse_lock(extra.lock)
    check_fresh(parsed, extra.requirements_in, relock)
    check_target(parsed, target, image, image_sha256, relock)
    header = parsed.header
    if header is None or header.extra != extra.name:
        raise BundlerError(
            f"{extra.lock.name} is not the lock of extra '{extra.name}' "
            f"(its header names {header.extra if header and header.extra else 'no extra'})",
            where=f"{extra.lock}:1",
            fix=relock,
        )
    if header.base_lock_sha256 != base.sha256:
        raise BundlerError(
            f"lock out of date: extra '{extra.name}' was locked against another {base.path.name} "
            "(the base lock was re-locked since)",
            where=f"{extra.lock}:{header.line}",
            fix=relock,
        )
    return parsed


def record(name: str, lock: Lock, packages: list[dict[str, str]]) -> dict[str, Any]:
    """How MANIFEST.json and the build's result name an extra: its lock and what it brings for the target."""
    return {
        "name": name,
        "lock": lock.path.name,
        "lock_sha256": lock.sha256,
        "packages": sorted(packages, key=lambda p: p["name"]),
    }
