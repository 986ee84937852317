"""``bundle.install=wheels`` (the fallback mode): install the delta offline at boot from ``wheels/``.

Only what the environment lacks (lock pins not already satisfied, plus the project wheel), with
``--no-index --require-hashes --no-deps``, by the image's uv when it has one, else pip. A pin with no
fitting wheel in the bundle fails fast (exit 3) before any installer starts. The lock reader and the
version rule serve ``spectramind test`` too.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import EXIT_VERIFY, BootError, canonical, log, version_satisfies
from .drift import installed
from .target import glibc_version, running_abi, wheel_ok


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of requirements.lock with its hashes (and marker, if any)."""

    name: str
    version: str
    hashes: tuple[str, ...]
    marker: str = ""

    @property
    def key(self) -> str:
        return canonical(self.name)

    def requirement_line(self) -> str:
        marker = f" ; {self.marker}" if self.marker else ""
        return f"{self.name}=={self.version}{marker} " + " ".join(f"--hash=sha256:{h}" for h in self.hashes)


def parse_lock(text: str) -> list[Pin]:
    """Pins of a pip-tools lock (continuation lines joined, comments and options dropped)."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    if current.strip():
        logical.append(current.strip())
    pins = []
    for line in logical:
        if line.startswith("-"):
            continue  # --index-url and friends: the shim decides where wheels come from
        m = re.match(
            r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(?:;\s*([^-]*?))?\s*(--.*)?$",
            line,
        )
        if not m:
            raise BootError(
                f"cannot read lock line {line[:80]!r}",
                where="requirements.lock",
                fix="regenerate the lock with `python -m bundler lock` and rebuild the bundle",
            )
        hashes = tuple(re.findall(r"--hash[= ]sha256:([0-9a-f]{64})", m.group(4) or ""))
        pins.append(Pin(m.group(1), m.group(2), hashes, (m.group(3) or "").strip()))
    return pins


@dataclass
class InstallPlan:
    pins: list[Pin]  # what the environment lacks, installed with --no-deps
    satisfied: list[str]
    wheels: dict[str, str]  # pin key -> wheel filename in wheels/


def _wheel_name_version(filename: str) -> tuple[str, str]:
    parts = filename.removesuffix(".whl").split("-")
    return canonical(parts[0]), parts[1] if len(parts) > 1 else ""


def plan_install(
    bundle: Path, manifest: dict[str, Any], pins: list[Pin], have: dict[str, str] | None = None
) -> InstallPlan:
    """Decide what to install; fail fast when a needed wheel is not in the bundle or does not fit.

    ``have``: `drift.installed` when the caller collected it already.
    """
    have = installed() if have is None else have
    hashes = {e["path"]: e["sha256"] for e in manifest.get("files", [])}
    wheels = {
        p.removeprefix("wheels/"): h
        for p, h in hashes.items()
        if p.startswith("wheels/") and p.endswith(".whl")
    }
    # The project wheel is not in the lock: its pin comes from its file name and MANIFEST hash.
    for filename, digest in sorted(wheels.items()):
        key, version = _wheel_name_version(filename)
        if key == "spectramind":
            pins = [*pins, Pin("spectramind", version, (digest,))]
    # Wheels the build made from a locked sdist carry their own hash, recorded in MANIFEST `built`.
    built = {
        (canonical(str(b.get("name", ""))), str(b.get("version", ""))): str(b.get("sha256", ""))
        for b in manifest.get("built") or []
    }
    plan = InstallPlan([], [], {})
    abi, machine, glibc = running_abi(), platform.machine(), glibc_version()
    for pin in pins:
        if (pin.key, pin.version) in built and built[(pin.key, pin.version)] not in pin.hashes:
            pin = Pin(pin.name, pin.version, (*pin.hashes, built[(pin.key, pin.version)]), pin.marker)  # noqa: PLW2901
        if pin.key in have and version_satisfies(have[pin.key], pin.version):
            plan.satisfied.append(f"{pin.name}=={have[pin.key]}")
            continue
        candidates = [
            f
            for f, h in wheels.items()
            if _wheel_name_version(f) == (pin.key, pin.version) and (h in pin.hashes or not pin.hashes)
        ]
        if not candidates:
            raise BootError(
                f"the bundle has no wheel for {pin.name}=={pin.version} (locked hashes: {len(pin.hashes)}), "
                f"and this environment has {have.get(pin.key, 'no ' + pin.name)}",
                where=f"{bundle}/wheels",
                code=EXIT_VERIFY,
                fix="rebuild the bundle (python -m bundler build) for this image or fix the image manifest",
            )
        fitting = [f for f in candidates if wheel_ok(f, abi, machine, glibc)]
        if not fitting:
            raise BootError(
                f"{candidates[0]} does not fit this interpreter ({abi}, {machine}, glibc "
                f"{'.'.join(map(str, glibc or ()))})",
                where=f"{bundle}/wheels/{candidates[0]}",
                fix="rebuild the bundle with the target profile of this image (target=...)",
            )
        plan.pins.append(pin)
        plan.wheels[pin.key] = fitting[0]
    return plan


def _clean_env() -> dict[str, str]:
    """The child environment for installers: no user pip/uv config can send them anywhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def install(bundle: Path, plan: InstallPlan, workdir: Path) -> dict[str, Any]:
    """Install ``plan.pins`` offline from ``<bundle>/wheels`` with hashes required: the image's uv
    when it has one (on PATH), else pip."""
    info: dict[str, Any] = {
        "installed": [f"{p.name}=={p.version}" for p in plan.pins],
        "satisfied": plan.satisfied,
        "installer": None,
    }
    if not plan.pins:
        return info
    reqs = workdir / "install.txt"
    reqs.write_text("".join(p.requirement_line() + "\n" for p in plan.pins), encoding="utf-8")
    wheels, env = str(bundle / "wheels"), _clean_env()
    uv_binary = shutil.which("uv")
    if uv_binary is not None:
        same_fs = workdir.stat().st_dev == site_packages().stat().st_dev
        env = dict(
            env,
            UV_CACHE_DIR=str(workdir / "uv-cache"),
            UV_NO_CONFIG="1",
            UV_OFFLINE="1",
            UV_PYTHON_DOWNLOADS="never",
        )
        # A cache on the target's filesystem lets uv hardlink; across filesystems it must copy.
        cmd = [
            uv_binary,
            "pip",
            "install",
            "--python",
            sys.executable,
            "--no-index",
            "--find-links",
            wheels,
            "--require-hashes",
            "--no-deps",
            "--link-mode",
            "hardlink" if same_fs else "copy",
            "--break-system-packages",
            "-r",
            str(reqs),
        ]
        info["installer"] = f"uv ({'hardlink' if same_fs else 'copy'})"
    else:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            wheels,
            "--require-hashes",
            "--no-deps",
            "--no-compile",  # like uv: bytecode is written on first import, not during boot
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "-r",
            str(reqs),
        ]
        info["installer"] = "pip"
    log(
        f"installing {len(plan.pins)} package(s) with {info['installer']}: "
        + ", ".join(info["installed"][:8])
        + (" ..." if len(plan.pins) > 8 else "")
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise BootError(
            f"offline install failed ({info['installer']} exit {proc.returncode}):\n{tail}",
            where=f"{bundle}/wheels",
            fix="rebuild the bundle for this image; check the lines above",
        )
    importlib.invalidate_caches()
    return info
