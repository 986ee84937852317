"""Build a wheel from a pure-Python sdist, reproducibly (same sdist in, same wheel bytes out).

- The sdist has already been verified against the lock's hash by the caller.
- ``SOURCE_DATE_EPOCH`` is the newest member time inside the sdist (not the clock), ``umask`` 022,
  ``PYTHONHASHSEED=0``: the wheel depends on the sdist and the build backend only.
- pip runs with ``PIP_CONFIG_FILE=/dev/null`` and no ``PIP_*`` variables: this machine's pip
  configuration (find-links, extra indexes, constraints) never leaks into the build.
- Build requirements (``[build-system] requires``, default setuptools) that are installed here are
  used as they are (``--no-build-isolation --no-index``: no network); otherwise pip builds in an
  isolated environment fetched from ``bundle.index_url``.
- Only ``py3-none-any``-style wheels are accepted: an sdist that compiles code (or fails to build)
  is rejected naming the package and the ways out.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler import tempdirs
from bundler.errors import BundlerError
from bundler.pipenv import pip_env
from bundler.tags import is_pure, parse_filename

DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
MIN_EPOCH = 315532800  # 1980-01-01: the earliest time a zip (wheel) entry can hold
BUILD_TIMEOUT_S = 900


def ways_out(name: str, version: str) -> str:
    return (
        f"publish or find a wheel of {name} {version} for the target and add it to the index, "
        f"pin another version of {name} that ships a wheel (then re-lock), "
        f"or drop {name} from requirements.in"
    )


def _read_sdist(sdist: Path) -> tuple[int, bytes | None]:
    """(newest member mtime, top-level pyproject.toml bytes or None), read without extracting."""
    newest = 0
    pyproject: bytes | None = None
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist():
                stamp = int(datetime.datetime(*info.date_time, tzinfo=datetime.UTC).timestamp())
                newest = max(newest, stamp)
                if info.filename.count("/") == 1 and info.filename.endswith("/pyproject.toml"):
                    pyproject = zf.read(info)
        return newest, pyproject
    with tarfile.open(sdist, "r:*") as tf:
        for member in tf.getmembers():
            newest = max(newest, int(member.mtime))
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/pyproject.toml"):
                handle = tf.extractfile(member)
                pyproject = handle.read() if handle else None
    return newest, pyproject


def build_requires(pyproject: bytes | None) -> tuple[str, ...]:
    """The sdist's declared build requirements (PEP 518), or setuptools by default."""
    if pyproject is None:
        return DEFAULT_BUILD_REQUIRES
    try:
        data = tomllib.loads(pyproject.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return DEFAULT_BUILD_REQUIRES
    system = data.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return DEFAULT_BUILD_REQUIRES
    return tuple(str(r) for r in system["requires"])


def installed_here(requirements: tuple[str, ...]) -> bool:
    """Whether every build requirement is already installed in this interpreter."""
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return False
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not req.specifier.contains(have, prereleases=True):
            return False
    return True


def clean_env(epoch: int) -> dict[str, str]:
    """The environment of the build: no machine pip/uv settings, fixed time and hash seed."""
    return pip_env(
        SOURCE_DATE_EPOCH=str(max(epoch, MIN_EPOCH)), PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1"
    )


def build_pure_wheel(
    sdist: Path, out_dir: Path, *, name: str, version: str, index_url: str, offline: bool
) -> Path:
    """Build ``sdist`` into one pure-Python wheel in ``out_dir`` (returned); reject anything else."""
    try:
        epoch, pyproject = _read_sdist(sdist)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise BundlerError(
            f"cannot read the sdist of {name} {version}: {exc}", where=str(sdist), fix=ways_out(name, version)
        ) from exc
    requires = build_requires(pyproject)
    local = installed_here(requires)
    if not local and offline:
        raise BundlerError(
            f"cannot build {name} {version} offline: its build requirements {list(requires)} "
            "are not installed here",
            where=str(sdist),
            fix="build once without --offline (the built wheel is cached), or install the build "
            "requirements into this environment",
        )
    source = ["--no-build-isolation", "--no-index"] if local else ["--index-url", index_url]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempdirs.temporary(tempdirs.SDIST_BUILD) as tmp:
        wheel_dir = tmp / "out"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "--isolated",
            "--quiet",
            "--wheel-dir",
            str(wheel_dir),
            *source,
            str(sdist),
        ]
        try:
            proc = subprocess.run(
                cmd,
                env=clean_env(epoch),
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                umask=0o022,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BundlerError(
                f"building {name} {version} from its sdist took over {BUILD_TIMEOUT_S} s",
                where=str(sdist),
                fix=ways_out(name, version),
            ) from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
            raise BundlerError(
                f"cannot build a wheel of {name} {version} from its sdist (it may need a compiler "
                f"or build tools for the target):\n{tail}",
                where=str(sdist),
                fix=ways_out(name, version),
            )
        wheels = sorted(wheel_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BundlerError(
                f"building {name} {version} produced {len(wheels)} wheels, expected one",
                where=str(sdist),
                fix=ways_out(name, version),
            )
        built = wheels[0]
        parsed = parse_filename(built.name)
        if parsed is None or canonicalize_name(parsed.name) != canonicalize_name(name):
            raise BundlerError(
                f"the sdist of {name} {version} built an unexpected wheel {built.name}",
                where=str(sdist),
                fix=ways_out(name, version),
            )
        if not is_pure(built.name):
            tags = ", ".join(sorted(str(t) for t in parsed.tags))
            raise BundlerError(
                f"{name} {version} is not pure Python: its sdist builds a platform wheel ({tags}) "
                "for this build machine, not for the target",
                where=str(sdist),
                fix=ways_out(name, version),
            )
        final = out_dir / built.name
        built.replace(final)
    return final
