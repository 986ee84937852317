"""The boot shim: stdlib-only, one file, shipped verbatim as ``<bundle>/boot/shim.py``.

It runs inside the Kaggle kernel before anything is installed, so it imports nothing outside the
standard library. The build side imports the same file (``spectramind.shim``) for the MANIFEST.json
format, so the bundle is written and checked by one piece of code.

``python shim.py [--bundle DIR] [--] [COMMAND...]`` (started by ``boot/kaggle-boot.sh``):

1. locate the bundle (the one holding this file, else ``$SPECTRAMIND_INPUT/*/``, ``*/*/`` and
   ``datasets/*/*/``) and verify every file against MANIFEST.json (exit 3);
2. check Python/ABI/platform against MANIFEST ``target`` (exit 1, naming both sides);
3. install offline what the environment lacks: lock pins not already satisfied (plus the project
   wheel), ``--no-index --require-hashes --no-deps``, with the bundled uv (run from its wheel) or pip;
   a pin with no wheel in the bundle fails fast (exit 3) before any installer starts;
4. write the fallback submission (``spectramind predict predict.mode=fallback``, else the data's
   sample_submission.csv) and keep a copy of the last valid one;
5. run COMMAND (default ``spectramind predict env=kaggle``) in its own process group with
   SPECTRAMIND_CONFIG_DIR/BUNDLE/OUTPUT/INPUT/DATA/DEADLINE/BUDGET_S set; SIGINT at the soft deadline
   (start + budget - safety margin), SIGTERM after ``SPECTRAMIND_GRACE_INT_S``, SIGKILL after
   ``SPECTRAMIND_GRACE_TERM_S`` more (the hard deadline); exit 124 then;
6. whatever happened: a valid submission if one can be had, ``run_hash_summary_v50.json`` and an
   appended ``v50_debug_log.md`` in the output dir.

Budget knobs: SPECTRAMIND_BOOT_START (unix time the kernel started; kaggle-boot.sh sets it first),
SPECTRAMIND_BUDGET_S / SPECTRAMIND_SAFETY_MARGIN_S (default: the bundle's configs/env/<profile>.yaml
``budget_s`` / ``safety_margin_s``, else 32400 / 900; the margin is at most half the budget),
SPECTRAMIND_FALLBACK=0 (no fallback step), SPECTRAMIND_FALLBACK_TIMEOUT_S (300).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = 1
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a sorted POSIX relative path, MANIFEST.json excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``[{path, sha256, size}]`` for every file of the bundle but MANIFEST.json, sorted by path."""
    return [
        {"path": rel, "sha256": file_sha256(root / rel), "size": (root / rel).stat().st_size}
        for rel in list_files(root)
    ]


def bundle_sha256(entries: list[dict[str, Any]]) -> str:
    """The bundle hash: sha256 over the sorted file list, one ``path<TAB>sha256<TAB>size`` line each."""
    lines = "".join(
        f"{e['path']}\t{e['sha256']}\t{e['size']}\n" for e in sorted(entries, key=lambda e: e["path"])
    )
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class VerifyReport:
    """What differs between a bundle directory and its MANIFEST.json."""

    bundle_sha256: str = ""
    files: int = 0
    bytes: int = 0
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.modified or self.missing or self.extra or self.errors)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def verify_bundle(root: Path, hashed: dict[str, Future[str | None]] | None = None) -> VerifyReport:
    """Recompute every hash of ``root`` against its MANIFEST.json.

    ``hashed``: relative path -> the sha256 another thread is computing over that very file (boot
    hashes the uv wheel while unpacking it); those files are checked last, and hashed here when the
    other thread gives None.
    """
    hashed = hashed or {}
    report = VerifyReport()
    try:
        manifest = read_manifest(root)
        listed = {e["path"]: e for e in manifest["files"]}
    except FileNotFoundError:
        report.errors.append(f"{MANIFEST_NAME} is missing")
        return report
    except (ValueError, KeyError, TypeError) as exc:
        report.errors.append(f"{MANIFEST_NAME} is unreadable: {exc}")
        return report
    report.bundle_sha256 = str(manifest.get("bundle_sha256", ""))
    present = set(list_files(root))
    report.missing = sorted(set(listed) - present)
    report.extra = sorted(present - set(listed))
    both = sorted(set(listed) & present)
    for rel in [r for r in both if r not in hashed] + [r for r in both if r in hashed]:
        entry, path = listed[rel], root / rel
        size = path.stat().st_size
        report.files += 1
        report.bytes += size
        digest = hashed[rel].result() if rel in hashed else None
        if size != entry["size"] or (digest or file_sha256(path)) != entry["sha256"]:
            report.modified.append(rel)
    report.modified.sort()
    if bundle_sha256(list(listed.values())) != report.bundle_sha256:
        report.errors.append("bundle_sha256 does not match the file list in MANIFEST.json")
    return report


# ---------------------------------------------------------------------------------------------
# Boot: locate -> verify -> check target -> install (offline) -> fallback -> budgeted run -> record
# ---------------------------------------------------------------------------------------------

EXIT_OK, EXIT_ERROR, EXIT_VERIFY, EXIT_BUDGET = 0, 1, 3, 124
DEFAULT_INPUT = "/kaggle/input"
DEFAULT_OUTPUT = "/kaggle/working"
DEFAULT_COMMAND = ["spectramind", "predict", "env=kaggle"]
DEFAULT_BUDGET_S, DEFAULT_MARGIN_S = 32400.0, 900.0
COMPETITION = "ariel-data-challenge-2025"
SUMMARY_NAME, DEBUG_LOG_NAME, SUBMISSION_NAME = (
    "run_hash_summary_v50.json",
    "v50_debug_log.md",
    "submission.csv",
)
# Locked for boot, not for the payload: the shim runs uv straight from its wheel, so installing it
# into site-packages would only cost time (its 40 MB binary written twice).
BOOT_ONLY = frozenset({"uv"})
_MANYLINUX_ALIASES = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class BootError(Exception):
    """A boot failure: what failed, where, how to fix it, and the exit code (DESIGN §4)."""

    def __init__(self, what: str, *, where: str = "", fix: str = "", code: int = EXIT_ERROR) -> None:
        self.what, self.where, self.fix, self.code = what, where, fix, code
        super().__init__(what)

    def render(self) -> str:
        lines = [f"ERROR {self.what}"]
        lines += [f"  where: {self.where}"] * bool(self.where) + [f"  fix:   {self.fix}"] * bool(self.fix)
        return "\n".join(lines)


def log(message: str) -> None:
    print(f"[boot {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    The one atomic writer of the project (the build side imports it too): readers see the old file
    or the new one, never half of either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- locate --------------------------------------------------------------------------------


def locate_bundle(input_dir: Path, here: Path | None = None) -> Path:
    """The bundle root: the one holding this shim, else a glob over Kaggle's input layouts."""
    if here is not None and (here / MANIFEST_NAME).is_file():
        return here
    patterns = ("*/boot/shim.py", "*/*/boot/shim.py", "datasets/*/*/boot/shim.py")  # never recursive
    found = [p for pattern in patterns for p in sorted(input_dir.glob(pattern))]
    roots = [p.parent.parent for p in found if (p.parent.parent / MANIFEST_NAME).is_file()]
    if not roots:
        raise BootError(
            "no SpectraMind bundle found",
            where=f"{input_dir}/" + f", {input_dir}/".join(patterns),
            fix="attach the bundle dataset to the kernel, or set SPECTRAMIND_INPUT to where it is mounted",
        )
    if len(roots) > 1:
        log(f"several bundles found; using {roots[0]} (others: {', '.join(map(str, roots[1:]))})")
    return roots[0]


# --- profile (a tiny reader for the flat `key: value` env profiles) -------------------------


def read_flat_yaml(path: Path) -> dict[str, str]:
    """Top-level ``key: scalar`` pairs of a simple YAML file (comments stripped); {} if absent."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*(?:#.*)?$", line)
        if m and m.group(2):
            out[m.group(1)] = m.group(2).strip("'\"")
    return out


def profile_name(command: list[str]) -> str:
    for arg in command:
        m = re.match(r"^\+{0,2}env=(\S+)$", arg)
        if m:
            return m.group(1)
    return os.environ.get("SPECTRAMIND_PROFILE", "kaggle")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise BootError(f"{name}={raw!r} is not a number", fix=f"set {name} to seconds, e.g. 3600") from None


@dataclass
class Budget:
    """The time plan: everything in unix seconds, counted from kernel start (``start``)."""

    start: float
    budget_s: float
    margin_s: float
    grace_int_s: float
    grace_term_s: float

    @property
    def soft(self) -> float:  # SIGINT: the command should have flushed its submission by now
        return self.start + self.budget_s - self.margin_s

    @property
    def hard(self) -> float:  # SIGKILL: nothing of the command survives past this
        return self.soft + self.grace_int_s + self.grace_term_s

    def left(self) -> float:
        return self.soft - time.time()


def load_budget(profile: dict[str, str], started: float | None = None) -> Budget:
    """The budget of ``profile`` under the environment's knobs; ``started``: when boot began, when
    SPECTRAMIND_BOOT_START does not say."""
    start = env_float("SPECTRAMIND_BOOT_START", time.time() if started is None else started)
    budget = env_float("SPECTRAMIND_BUDGET_S", float(profile.get("budget_s", DEFAULT_BUDGET_S)))
    margin = env_float("SPECTRAMIND_SAFETY_MARGIN_S", float(profile.get("safety_margin_s", DEFAULT_MARGIN_S)))
    margin = min(margin, budget / 2)  # a budget of seconds keeps half of it for the command
    grace_int = env_float("SPECTRAMIND_GRACE_INT_S", min(60.0, margin / 3))
    grace_term = env_float("SPECTRAMIND_GRACE_TERM_S", min(30.0, margin / 6))
    return Budget(start, budget, margin, grace_int, grace_term)


# --- target check --------------------------------------------------------------------------


def glibc_version() -> tuple[int, int] | None:
    try:
        raw = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    m = re.match(r"glibc (\d+)\.(\d+)", raw)
    return (int(m.group(1)), int(m.group(2))) if m else None


def running_abi() -> str:
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
    return f"{impl}{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"


def platform_ok(tag: str, machine: str, glibc: tuple[int, int] | None) -> bool:
    """True when this system can load wheels tagged with platform ``tag``."""
    if tag == "any":
        return True
    m = re.match(r"^(manylinux_(\d+)_(\d+)|manylinux1|manylinux2010|manylinux2014|linux)_(.+)$", tag)
    if not m or m.group(4) != machine:
        return False
    if m.group(1) == "linux":
        return True
    need = (int(m.group(2)), int(m.group(3))) if m.group(2) else _MANYLINUX_ALIASES[m.group(1)]
    return glibc is not None and need <= glibc


def _py_tag_ok(tag: str, abis: set[str]) -> bool:
    m = re.fullmatch(r"(py|cp)(\d)(\d*)", tag)
    major, minor = sys.version_info.major, sys.version_info.minor
    if not m or int(m.group(2)) != major or (m.group(1) == "cp" and sys.implementation.name != "cpython"):
        return False
    if not m.group(3):
        return True
    wanted = int(m.group(3))
    return wanted == minor or (wanted < minor and (m.group(1) == "py" or bool(abis & {"abi3", "none"})))


def wheel_ok(filename: str, abi: str, machine: str, glibc: tuple[int, int] | None) -> bool:
    """True when a wheel's tags (``name-ver[-build]-py-abi-plat.whl``) fit the running interpreter."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        return False
    pys, abis, plats = (set(p.split(".")) for p in parts[-3:])
    return (
        any(_py_tag_ok(p, abis) for p in pys)
        and bool(abis & {abi, "none", "abi3"})
        and any(platform_ok(p, machine, glibc) for p in plats)
    )


def check_target(manifest: dict[str, Any]) -> dict[str, Any]:
    """Compare the running Python/ABI/platform with MANIFEST ``target``; raise on a mismatch."""
    target = manifest.get("target") or {}
    python, machine = platform.python_version(), platform.machine()
    running: dict[str, Any] = {
        "python": python,
        "abi": running_abi(),
        "machine": machine,
        "glibc": ".".join(map(str, glibc_version() or ())) or None,
    }
    want_py, want_abi = str(target.get("python", "")), str(target.get("abi", ""))
    fix = "attach the bundle built for this image (python -m bundler build target=...) or pin the image"
    if want_py and python.split(".")[:2] != want_py.split(".")[:2]:
        raise BootError(
            f"bundle targets Python {want_py}, this kernel runs Python {running['python']}",
            where=MANIFEST_NAME + " target.python",
            fix=fix,
        )
    if want_abi and want_abi != running["abi"]:
        raise BootError(
            f"bundle targets ABI {want_abi}, this interpreter is {running['abi']}",
            where=MANIFEST_NAME + " target.abi",
            fix=fix,
        )
    plats = [str(p) for p in target.get("platforms") or []]
    if plats and not any(platform_ok(p, machine, glibc_version()) for p in plats):
        raise BootError(
            f"none of the bundle's platforms ({plats[0]}, ...) fits this system "
            f"({running['machine']}, glibc {running['glibc']})",
            where=MANIFEST_NAME + " target.platforms",
            fix=fix,
        )
    return running


# --- install (offline, hash-checked, only what is missing) ---------------------------------


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


def version_satisfies(installed: str, pinned: str) -> bool:
    """PEP 440 ``==`` for the cases that matter: an installed 2.13.0+cpu satisfies a pin 2.13.0."""
    a, b = installed.strip().lower().lstrip("v"), pinned.strip().lower().lstrip("v")
    if a == b or ("+" not in b and a.split("+", 1)[0] == b):
        return True
    return "+" not in b and bool(_trim(a)) and _trim(a) == _trim(b)


def _trim(version: str) -> str:
    """2.0 == 2.0.0: trailing zero components do not count."""
    return re.sub(r"(\.0)+$", "", version.split("+", 1)[0])


def installed_versions() -> dict[str, str]:
    """Canonical name -> version of every distribution importable by this interpreter (first wins)."""
    import importlib.metadata  # 30 ms of imports: paid here, beside verification (Boot)

    out: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and canonical(name) not in out:
            out[canonical(name)] = dist.version
    return out


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

    ``have``: ``installed_versions()`` when the caller collected it already.
    """
    have = installed_versions() if have is None else have
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
        if pin.key in BOOT_ONLY:
            continue
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


def uv_wheel(bundle: Path) -> Path | None:
    """The bundled uv wheel that fits this interpreter, if any."""
    fitting = [
        w
        for w in sorted((bundle / "wheels").glob("uv-*.whl"))
        if wheel_ok(w.name, running_abi(), platform.machine(), glibc_version())
    ]
    return fitting[0] if fitting else None


def _member_span(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Byte range of a member's data in the archive (after its local header)."""
    assert zf.fp is not None  # noqa: S101 -- an open ZipFile
    zf.fp.seek(info.header_offset)
    header = zf.fp.read(30)
    name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def extract_uv(
    bundle: Path, workdir: Path, manifest: dict[str, Any], digest: Future[str | None] | None = None
) -> Path | None:
    """Extract the ``uv`` binary from the bundled uv wheel (exec bit kept); None when absent.

    One pass over the wheel hashes it and, when the binary is stored uncompressed (the build repacks
    uv so), copies it out; the binary is kept only when that hash matches MANIFEST.json, so it may
    run while the rest of the bundle is still being verified. ``digest`` receives the wheel's sha256
    for verification to reuse (None when nothing was hashed).
    """
    wheel, got = uv_wheel(bundle), None
    try:
        if wheel is None:
            return None
        listed = {str(e.get("path")): str(e.get("sha256")) for e in manifest.get("files") or []}
        dest = workdir / "uv"
        with zipfile.ZipFile(wheel) as zf:
            member = next(
                (i for i in zf.infolist() if re.fullmatch(r"uv-[^/]+\.data/scripts/uv", i.filename)), None
            )
            if member is None:
                return None
            stored = member.compress_type == zipfile.ZIP_STORED
            lo, hi = _member_span(zf, member) if stored else (0, 0)
            hasher, pos = hashlib.sha256(), 0
            with wheel.open("rb") as src, dest.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    hasher.update(chunk)
                    if pos < hi and pos + len(chunk) > lo:
                        out.write(chunk[max(lo - pos, 0) : hi - pos])
                    pos += len(chunk)
            got = hasher.hexdigest()
            if got != listed.get(f"wheels/{wheel.name}"):
                dest.unlink()  # verification names it; an unverified binary never runs
                return None
            if not stored:  # a wheel from before the build repacked uv: inflate it now
                with zf.open(member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            dest.chmod(((member.external_attr >> 16) & 0o777) | 0o755)
            return dest
    finally:
        if digest is not None and not digest.done():
            digest.set_result(got)


def prepare_uv(
    bundle: Path, workdir: Path, manifest: dict[str, Any], digest: Future[str | None] | None = None
) -> Path | None:
    """Unpack uv and let it learn this interpreter (cached in its cache dir), both beside verification.

    uv asks every interpreter it uses for its paths and tags by starting it; doing that now takes the
    interpreter start out of the install step. A failure here only means the install asks again.
    """
    binary = extract_uv(bundle, workdir, manifest, digest)
    if binary is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [str(binary), "python", "find", sys.executable],
                env=uv_env(workdir),
                capture_output=True,
                timeout=120,
                check=False,
            )
    return binary


def _clean_env() -> dict[str, str]:
    """The child environment for installers: no user pip/uv config can send them anywhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def uv_env(workdir: Path) -> dict[str, str]:
    """uv's environment: offline, no config files, no Python downloads, its cache in ``workdir``."""
    env = _clean_env()
    env.update(
        UV_CACHE_DIR=str(workdir / "uv-cache"), UV_NO_CONFIG="1", UV_OFFLINE="1", UV_PYTHON_DOWNLOADS="never"
    )
    return env


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def install(
    bundle: Path, plan: InstallPlan, workdir: Path, uv: Future[Path | None] | None = None
) -> dict[str, Any]:
    """Install ``plan.pins`` offline from ``<bundle>/wheels`` with hashes required; uv when bundled.

    ``uv``: the binary being prepared already (`Boot` starts ``prepare_uv`` while it verifies).
    """
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
    waited = time.perf_counter()
    try:
        uv_binary = uv.result() if uv is not None else extract_uv(bundle, workdir, read_manifest(bundle))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BootError(
            f"cannot unpack uv from its wheel: {exc}",
            where=f"{bundle}/wheels",
            fix="rebuild the bundle; set bundle.include_uv=false to boot with pip",
        ) from exc
    info["uv_wait_s"] = round(time.perf_counter() - waited, 4)  # uv still being prepared
    if uv_binary is not None:
        same_fs = workdir.stat().st_dev == site_packages().stat().st_dev
        env = uv_env(workdir)
        # A cache on the target's filesystem lets uv hardlink; across filesystems it must copy.
        cmd = [
            str(uv_binary),
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


# --- submissions ---------------------------------------------------------------------------


def submission_problem(path: Path, sample: Path | None = None) -> str | None:  # noqa: PLR0911
    """None when ``path`` is a valid submission; otherwise what is wrong with it."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"unreadable: {exc}"
    if len(rows) < 2 or len(rows[0]) < 2:
        return "no header or no rows"
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            return f"line {number} has {len(row)} fields, header has {width}"
        try:
            if not all(math.isfinite(float(v)) for v in row[1:]):
                return f"line {number} has a non-finite value"
        except ValueError:
            return f"line {number} has a non-numeric value"
    if sample is not None and sample.is_file():
        with sample.open(newline="", encoding="utf-8") as fh:
            expected = list(csv.reader(fh))
        if expected and rows[0] != expected[0]:
            return "header differs from sample_submission.csv"
        if len(rows) != len(expected):
            return f"{len(rows) - 1} rows, sample_submission.csv has {len(expected) - 1}"
    return None


def find_data_dir(input_dir: Path, profile: dict[str, str]) -> Path | None:
    candidates = [
        os.environ.get("SPECTRAMIND_DATA", ""),
        profile.get("data_dir", ""),
        str(input_dir / COMPETITION),
    ]
    for raw in candidates:
        if raw and raw != "null" and Path(raw).is_dir():
            return Path(raw)
    return None


# --- the budgeted run ----------------------------------------------------------------------


@dataclass
class RunOutcome:
    code: int
    reason: str  # completed | failed | budget | not-started
    seconds: float = 0.0
    signals: list[dict[str, Any]] = field(default_factory=list)
    ended: float = 0.0
    hard_deadline: float = 0.0

    @property
    def overshoot_s(self) -> float | None:
        """How far past the hard deadline (the SIGKILL time) the process group lived; None if not killed."""
        return round(self.ended - self.hard_deadline, 4) if self.signals else None


def run_budgeted(
    cmd: list[str], env: dict[str, str], soft: float, grace_int: float, grace_term: float
) -> RunOutcome:
    """Run ``cmd`` in its own process group; SIGINT at ``soft``, then SIGTERM, then SIGKILL."""
    started = time.time()
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    except OSError as exc:
        raise BootError(
            f"cannot start {cmd[0]!r}: {exc}",
            where=" ".join(cmd),
            fix="check the command; console scripts live in the environment's bin/",
        ) from exc
    schedule = [
        (soft, signal.SIGINT),
        (soft + grace_int, signal.SIGTERM),
        (soft + grace_int + grace_term, signal.SIGKILL),
    ]
    outcome = RunOutcome(code=0, reason="completed", hard_deadline=schedule[-1][0])
    forward = _forward_signals(proc.pid)
    try:
        for when, sig in schedule:
            try:
                outcome.code = proc.wait(timeout=max(0.0, when - time.time()))
                break
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, sig)
                outcome.signals.append({"signal": sig.name, "at": round(time.time() - started, 3)})
        else:
            outcome.code = proc.wait()
    finally:
        _killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (workers, children) go too
        for sig, previous in forward.items():
            signal.signal(sig, previous)
    outcome.ended = time.time()
    outcome.seconds = round(outcome.ended - started, 3)
    if outcome.signals:
        outcome.reason, outcome.code = "budget", EXIT_BUDGET
    elif outcome.code == EXIT_BUDGET:  # the payload stopped itself at its deadline (DESIGN §4)
        outcome.reason = "budget"
    elif outcome.code != 0:
        outcome.reason = "failed"
        if outcome.code < 0:  # killed by a signal from elsewhere: the shell's 128+N convention
            outcome.code = 128 - outcome.code
    return outcome


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _forward_signals(pgid: int) -> dict[signal.Signals, Any]:
    """While the command runs, a SIGINT/SIGTERM sent to boot goes to the command's group too."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda s, _f: _killpg(pgid, signal.Signals(s)))
    return previous


# --- records ----------------------------------------------------------------------------------

_INFO_SCRIPT = r"""
import json, os, platform, sys
info = {"python": platform.python_version(), "platform": platform.platform(), "executable": sys.executable}
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    info["cuda_available"] = bool(torch.cuda.is_available())
    info["cudnn"] = torch.backends.cudnn.version() if info["cuda_available"] else None
except Exception as exc:
    info["torch"], info["torch_error"] = None, type(exc).__name__
try:
    import pynvml
    pynvml.nvmlInit()
    gpus = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        name = pynvml.nvmlDeviceGetName(h)
        gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                     "memory_total": pynvml.nvmlDeviceGetMemoryInfo(h).total})
    drv = pynvml.nvmlSystemGetDriverVersion()
    info["gpus"], info["driver"] = gpus, drv.decode() if isinstance(drv, bytes) else drv
    pynvml.nvmlShutdown()
except Exception as exc:
    info["gpus"], info["nvml"] = [], f"no GPU ({type(exc).__name__})"
try:
    from spectramind import runtime
    seed, det, threads = int(sys.argv[1]), sys.argv[2] == "true", int(sys.argv[3])
    info["determinism"] = runtime.apply_determinism(seed, det, threads)
except Exception as exc:
    info["determinism"] = {"error": type(exc).__name__}
print(json.dumps(info, default=str))
"""


def environment_info(profile: dict[str, str], timeout: float) -> dict[str, Any]:
    """Python/platform/torch/CUDA/GPU facts, from a subprocess of this interpreter (after install)."""
    args = [profile.get("seed", "1337"), profile.get("deterministic", "true"), profile.get("threads", "0")]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _INFO_SCRIPT, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_clean_env(),
        )
        data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return data
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as exc:
        return {"python": platform.python_version(), "platform": platform.platform(), "info_error": repr(exc)}


def write_records(out: Path, summary: dict[str, Any]) -> None:
    """``run_hash_summary_v50.json`` (atomic) and one appended entry of ``v50_debug_log.md``."""
    atomic_write(
        out / SUMMARY_NAME, (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode()
    )
    exit_ = summary.get("exit", {})
    budget, timings = summary.get("budget", {}), summary.get("timings_s", {})
    lines = [
        f"## {summary.get('started')} — exit {exit_.get('code')} ({exit_.get('reason')})",
        "",
        f"- command: `{' '.join(summary.get('command', []))}` (profile `{summary.get('profile')}`)",
        f"- bundle: `{summary.get('bundle')}` sha256 `{summary.get('bundle_sha256')}`",
        f"- commit `{summary.get('git_commit')}`, lock `{summary.get('lock_sha256')}`, image "
        f"`{(summary.get('image') or {}).get('name')}`",
        f"- python {summary.get('python')} on {summary.get('platform')}; torch {summary.get('torch')}, "
        f"CUDA {summary.get('cuda')}, GPUs {len(summary.get('gpus') or [])}",
        "- timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()),
        f"- budget: {budget.get('used_s')} s used of {budget.get('budget_s')} s "
        f"(margin {budget.get('safety_margin_s')} s); signals {exit_.get('signals')}; "
        f"overshoot past hard deadline {exit_.get('overshoot_s')} s",
        f"- install: {(summary.get('install') or {}).get('installer')}, "
        f"{len((summary.get('install') or {}).get('installed', []))} installed, "
        f"{len((summary.get('install') or {}).get('satisfied', []))} already satisfied",
        f"- submission: {summary.get('submission')}",
    ]
    if exit_.get("error"):
        lines.append(f"- error: {exit_['error']}")
    with (out / DEBUG_LOG_NAME).open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")


# --- the boot sequence ------------------------------------------------------------------------


class Boot:
    """One boot: each phase is a method; ``summary`` collects what the records need."""

    def __init__(self, command: list[str], bundle: Path | None, input_dir: Path, out: Path) -> None:
        self.command, self.input_dir, self.out = command, input_dir, out
        self.bundle_arg = bundle
        self.bundle: Path | None = None
        self.profile_name = profile_name(command)
        self.profile: dict[str, str] = {}
        self.budget = load_budget({})
        self.timings: dict[str, float] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="spectramind-boot-"))
        self.backup = self.workdir / "submission.last-valid.csv"
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="boot")
        self.uv: Future[Path | None] | None = None
        self.summary: dict[str, Any] = {
            "schema": 1,
            "command": command,
            "profile": self.profile_name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.budget.start)),
        }
        self.outcome = RunOutcome(code=EXIT_ERROR, reason="not-started")
        self.error: str | None = None
        self.submission_source = "none"

    def phase(self, name: str, started: float) -> None:
        self.timings[name] = round(time.time() - started, 4)

    def run(self) -> int:
        try:
            self._boot()
        except BootError as exc:
            log(exc.render())
            self.error, self.outcome.code = exc.what, exc.code
            self.outcome.reason = {EXIT_VERIFY: "verification-failed", EXIT_BUDGET: "budget"}.get(
                exc.code, "error"
            )
        finally:
            self._finish()
        return self.outcome.code

    def _boot(self) -> None:
        t = time.time()
        self.phase("start", self.budget.start)  # kernel start (or this process) -> the shim running
        self.bundle = self.bundle_arg or locate_bundle(self.input_dir)
        # While the bundle is verified (sha256 releases the GIL): uv is unpacked from its wheel, once
        # that wheel matched MANIFEST.json, and learns this interpreter; the installed distributions
        # are listed. Nothing is installed before the whole bundle verified.
        try:
            claimed = read_manifest(self.bundle)
        except (OSError, ValueError):
            claimed = {}  # verification reports it
        wheel, digest = uv_wheel(self.bundle), Future[str | None]()
        self.uv = self.pool.submit(prepare_uv, self.bundle, self.workdir, claimed, digest)
        have = self.pool.submit(installed_versions)
        self.profile = read_flat_yaml(self.bundle / "configs" / "env" / f"{self.profile_name}.yaml")
        self.budget = load_budget(self.profile, self.budget.start)
        self.out.mkdir(parents=True, exist_ok=True)
        log(
            f"bundle {self.bundle}; output {self.out}; budget {self.budget.budget_s:.0f} s "
            f"(margin {self.budget.margin_s:.0f} s), {self.budget.left():.0f} s left to the soft deadline"
        )
        hashed = {f"wheels/{wheel.name}": digest} if wheel is not None else {}
        report = verify_bundle(self.bundle, hashed)
        self.phase("verify", t)
        if claimed:  # what the MANIFEST claims, even when verification fails
            self._describe(claimed, report)
        if not report.ok:
            named = [f"modified: {p}" for p in report.modified] + [f"missing: {p}" for p in report.missing]
            named += [f"extra: {p}" for p in report.extra] + report.errors
            raise BootError(
                "bundle verification failed: " + "; ".join(named[:20]),
                where=str(self.bundle),
                fix="re-download or rebuild the bundle (python -m bundler build), then verify it "
                "with `python -m bundler verify`",
                code=EXIT_VERIFY,
            )
        manifest = claimed  # verified just now
        t = time.time()
        self.summary["running"] = check_target(manifest)
        lock = self.bundle / "requirements.lock"
        pins = parse_lock(lock.read_text(encoding="utf-8")) if lock.is_file() else []
        plan = plan_install(self.bundle, manifest, pins, have.result())
        self.phase("check", t)
        t = time.time()
        self.summary["install"] = install(self.bundle, plan, self.workdir, self.uv)
        self.phase("install", t)
        env = self._child_env()
        if os.environ.get("SPECTRAMIND_FALLBACK", "1") != "0":
            t = time.time()
            self._fallback(env)
            self.phase("fallback", t)
        if self.budget.left() <= 0:
            raise BootError(
                "no time left for the command after boot",
                code=EXIT_BUDGET,
                where=f"budget {self.budget.budget_s} s, margin {self.budget.margin_s} s",
                fix="raise SPECTRAMIND_BUDGET_S or shorten the install (fewer delta wheels)",
            )
        self._keep_valid()
        env.update(SPECTRAMIND_BUDGET_S=f"{max(0.0, self.budget.left()):.3f}")
        log(f"running {' '.join(self.command)} ({self.budget.left():.1f} s to the soft deadline)")
        t = time.time()
        self.outcome = run_budgeted(
            self._resolve(self.command),
            env,
            self.budget.soft,
            self.budget.grace_int_s,
            self.budget.grace_term_s,
        )
        self.phase("run", t)
        if self.outcome.reason == "budget":
            log(
                f"budget reached: sent {[s['signal'] for s in self.outcome.signals]}; "
                f"overshoot past the hard deadline {self.outcome.overshoot_s} s"
            )

    def _describe(self, manifest: dict[str, Any], report: VerifyReport) -> None:
        configs = [e for e in manifest.get("files", []) if str(e.get("path", "")).startswith("configs/")]
        self.summary.update(
            bundle=str(self.bundle),
            bundle_sha256=report.bundle_sha256,
            bundle_files=report.files,
            bundle_bytes=report.bytes,
            git_commit=manifest.get("git_commit"),
            lock_sha256=manifest.get("lock_sha256"),
            config_sha256=bundle_sha256(configs),
            image=manifest.get("image"),
            target=manifest.get("target"),
        )

    def _child_env(self) -> dict[str, str]:
        if self.bundle is None:
            raise BootError("internal: the environment was asked for before the bundle was located")
        env = dict(os.environ)
        scripts = sysconfig.get_paths()["scripts"]
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
        env.update(
            SPECTRAMIND_CONFIG_DIR=str(self.bundle / "configs"),
            SPECTRAMIND_BUNDLE=str(self.bundle),
            SPECTRAMIND_OUTPUT=str(self.out),
            SPECTRAMIND_INPUT=str(self.input_dir),
            SPECTRAMIND_DEADLINE=f"{self.budget.soft:.3f}",
            SPECTRAMIND_BOOT_START=f"{self.budget.start:.3f}",
        )
        data = find_data_dir(self.input_dir, self.profile)
        if data is not None:
            env["SPECTRAMIND_DATA"] = str(data)
        return env

    @staticmethod
    def _resolve(command: list[str]) -> list[str]:
        """``spectramind`` and ``python`` run with this very interpreter (the one just installed into)."""
        if command and command[0] == "spectramind":
            return [sys.executable, "-m", "spectramind.cli", *command[1:]]
        if command and command[0] in {"python", "python3"}:
            return [sys.executable, *command[1:]]
        return command

    def _sample(self) -> Path | None:
        data = find_data_dir(self.input_dir, self.profile)
        sample = data / "sample_submission.csv" if data else None
        return sample if sample is not None and sample.is_file() else None

    def _fallback(self, env: dict[str, str]) -> None:
        """The cheapest valid submission before the real command; sample_submission.csv if that fails."""
        limit = env_float("SPECTRAMIND_FALLBACK_TIMEOUT_S", 300.0)
        overrides = [a for a in self.command if re.match(r"^\+{0,2}env=", a)]
        cmd = [sys.executable, "-m", "spectramind.cli", "predict", "predict.mode=fallback", *overrides]
        fb_env = dict(env, SPECTRAMIND_DEADLINE=f"{min(self.budget.soft, time.time() + limit):.3f}")
        outcome = run_budgeted(cmd, fb_env, min(self.budget.soft, time.time() + limit), 2.0, 1.0)
        problem = submission_problem(self.out / SUBMISSION_NAME, self._sample())
        if outcome.code == 0 and problem is None:
            self.submission_source = "fallback"
            log("fallback submission written")
            return
        log(f"fallback prediction did not give a valid submission (exit {outcome.code}, {problem})")
        self._copy_sample()

    def _copy_sample(self) -> bool:
        sample = self._sample()
        if sample is None:
            return False
        atomic_write(self.out / SUBMISSION_NAME, sample.read_bytes())
        self.submission_source = "sample_submission"
        log(f"copied {sample} as the fallback submission")
        return True

    def _keep_valid(self) -> None:
        target = self.out / SUBMISSION_NAME
        if submission_problem(target, self._sample()) is None:
            shutil.copyfile(target, self.backup)

    def _changed(self, target: Path) -> bool:
        """Did the command write the submission (it differs from the one kept before it ran)?"""
        return not self.backup.is_file() or file_sha256(target) != file_sha256(self.backup)

    def _finish(self) -> None:
        """Whatever happened: a valid submission if one can be had, then the records."""
        target = self.out / SUBMISSION_NAME
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log(f"cannot create the output dir {self.out}: {exc}")
            return
        sample = self._sample()
        problem = submission_problem(target, sample)
        if problem is None and self.outcome.reason != "not-started" and self._changed(target):
            self.submission_source = "command" if self.outcome.reason == "completed" else "last-written"
        elif problem is not None and self.backup.is_file():
            atomic_write(target, self.backup.read_bytes())
            log(f"submission after the command was {problem}: restored the last valid one")
            self.submission_source = "restored"
        elif problem is not None:
            self._copy_sample()
        final = submission_problem(target, sample)
        info = environment_info(self.profile, env_float("SPECTRAMIND_INFO_TIMEOUT_S", 60.0))
        ended = time.time()
        self.timings["total"] = round(ended - self.budget.start, 4)
        self.summary.update(info)
        self.summary.update(
            profile_settings={k: self.profile.get(k) for k in ("name", "seed", "deterministic", "threads")},
            seeds={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"), "seed": self.profile.get("seed")},
            determinism_env={
                k: os.environ.get(k)
                for k in (
                    "PYTHONHASHSEED",
                    "CUBLAS_WORKSPACE_CONFIG",
                    "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                )
            },
            timings_s=self.timings,
            budget={
                "budget_s": self.budget.budget_s,
                "safety_margin_s": self.budget.margin_s,
                "grace_int_s": self.budget.grace_int_s,
                "grace_term_s": self.budget.grace_term_s,
                "start": self.budget.start,
                "soft_deadline": self.budget.soft,
                "hard_deadline": self.budget.hard,
                "used_s": round(ended - self.budget.start, 3),
                "left_s": round(self.budget.start + self.budget.budget_s - ended, 3),
            },
            exit={
                "code": self.outcome.code,
                "reason": self.outcome.reason,
                "signals": self.outcome.signals,
                "overshoot_s": self.outcome.overshoot_s,
                "error": self.error,
            },
            submission={
                "path": str(target),
                "valid": final is None,
                "problem": final,
                "source": self.submission_source if final is None else "none",
            },
        )
        self.summary.setdefault("install", {"installer": None, "installed": [], "satisfied": []})
        try:
            write_records(self.out, self.summary)
        except OSError as exc:
            log(f"cannot write the run records to {self.out}: {exc}")
        self.pool.shutdown(wait=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        log(
            f"exit {self.outcome.code} ({self.outcome.reason}); submission "
            f"{'valid' if final is None else final}; records in {self.out}"
        )


def main(argv: list[str] | None = None) -> int:
    """``python shim.py [--bundle DIR] [--] [COMMAND...]`` (run by boot/kaggle-boot.sh)."""
    args = list(sys.argv[1:] if argv is None else argv)
    bundle: Path | None = None
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--":
            break
        if flag == "--bundle" and args:
            bundle = Path(args.pop(0)).resolve()
        else:
            print(f"usage: shim.py [--bundle DIR] [--] [COMMAND...] (unknown option {flag})", file=sys.stderr)
            return 2
    input_dir = Path(os.environ.get("SPECTRAMIND_INPUT", DEFAULT_INPUT))
    out = Path(os.environ.get("SPECTRAMIND_OUTPUT", DEFAULT_OUTPUT))
    if bundle is None:
        here = Path(__file__).resolve().parent.parent
        bundle = here if (here / MANIFEST_NAME).is_file() and here.name != "src" else None
    try:
        boot = Boot(args or list(DEFAULT_COMMAND), bundle, input_dir, out)
    except BootError as exc:  # a malformed knob (SPECTRAMIND_BUDGET_S=...) before anything started
        log(exc.render())
        return exc.code
    return boot.run()


if __name__ == "__main__":
    sys.exit(main())
