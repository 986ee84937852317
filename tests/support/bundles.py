"""Hand-built bundles (DESIGN §5) for boot/simulate tests: tiny wheels, a hashed lock, MANIFEST.json.

The MANIFEST is written with the shim's own `file_entries`/`bundle_sha256`, so what the tests build
is checked by the same code that checks real bundles.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import platform
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spectramind.shim import MANIFEST_NAME, MANIFEST_SCHEMA, bundle_sha256, file_entries, glibc_version

REPO = Path(__file__).resolve().parents[2]
_EPOCH = (2020, 1, 1, 0, 0, 0)

# A stand-in for the payload's CLI: `predict predict.mode=fallback` writes a constant prior, any
# other `predict` writes "better" values; FAKE_FALLBACK_FAIL=1 makes the fallback crash.
FAKE_CLI = """
import csv, os, sys
from pathlib import Path

def _write(out, value):
    data = Path(os.environ.get("SPECTRAMIND_DATA", "/nonexistent"))
    sample = data / "sample_submission.csv"
    if sample.is_file():
        rows = list(csv.reader(sample.open()))
        header, ids = rows[0], [r[0] for r in rows[1:]]
    else:
        header, ids = ["planet_id", "wl_1", "wl_2", "sigma_1", "sigma_2"], ["1", "2", "3"]
    tmp = out / ".submission.tmp"
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in ids:
            w.writerow([i] + [value] * (len(header) - 1))
    os.replace(tmp, out / "submission.csv")

def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    out = Path(os.environ["SPECTRAMIND_OUTPUT"])
    if "predict.mode=fallback" in args:
        if os.environ.get("FAKE_FALLBACK_FAIL") == "1":
            raise SystemExit("fallback crashed on purpose")
        _write(out, "0.5")
        return 0
    if args[:1] == ["predict"]:
        _write(out, "0.75")
        return 0
    print("fake cli:", args)
    return 0

if __name__ == "__main__":
    sys.exit(main())
"""


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_pkg_wheel(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    tag: str = "py3-none-any",
    modes: dict[str, int] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A wheel holding ``files`` (archive path -> bytes), with METADATA, WHEEL and RECORD."""
    norm = name.replace("-", "_").lower()
    info = f"{norm}-{version}.dist-info"
    purelib = tag.endswith("-any")
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: spectramind-tests\n"
        f"Root-Is-Purelib: {str(purelib).lower()}\nTag: {tag}\n"
    ).encode()
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{norm}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for arc, data in files.items():
            zinfo = zipfile.ZipInfo(arc, date_time=_EPOCH)
            zinfo.external_attr = (modes or {}).get(arc, 0o644) << 16
            zinfo.compress_type = compression
            zf.writestr(zinfo, data)
    return path


def make_spectramind_wheel(directory: Path, version: str = "0.5.0") -> Path:
    """A tiny stand-in for the project wheel: ``spectramind.cli`` as in `FAKE_CLI`."""
    files = {
        "spectramind/__init__.py": f"__version__ = {version!r}\n".encode(),
        "spectramind/cli.py": FAKE_CLI.encode(),
    }
    return make_pkg_wheel(directory, "spectramind", version, files)


def make_uv_wheel(directory: Path) -> Path:
    """The uv wheel layout (``uv-<v>.data/scripts/uv``, exec bit) around this machine's real uv binary."""
    import uv  # the uv package installed here: its binary is the real thing

    binary = Path(uv.find_uv_bin())
    version = importlib.metadata.version("uv")
    arc = f"uv-{version}.data/scripts/uv"
    return make_pkg_wheel(
        directory,
        "uv",
        version,
        {arc: binary.read_bytes()},
        tag=f"py3-none-manylinux_2_17_{platform.machine()}",
        modes={arc: 0o755},
        compression=zipfile.ZIP_STORED,
    )


def running_target() -> dict[str, Any]:
    """MANIFEST ``target`` for the interpreter running the tests."""
    major, minor = sys.version_info[:2]
    glibc = glibc_version() or (2, 17)
    plats = [f"manylinux_2_{m}_{platform.machine()}" for m in range(glibc[1], 4, -1)]
    return {"python": f"{major}.{minor}", "abi": f"cp{major}{minor}", "platforms": plats}


@dataclass
class Pin:
    name: str
    version: str
    wheel: Path  # the wheel whose hash the lock carries
    ship: bool = True  # False: the image has it (listed in MANIFEST `skipped`, wheel not packed)
    sdist: Path | None = None  # the lock carries this sdist's hash; the wheel is listed in `built`


@dataclass
class BundleSpec:
    pins: list[Pin] = field(default_factory=list)
    spectramind: Path | None = None
    uv: Path | None = None
    target: dict[str, Any] = field(default_factory=running_target)
    image: dict[str, str] = field(default_factory=lambda: {"name": "test-image", "sha256": "0" * 64})
    env_profile: str = (
        "name: kaggle\nbudget_s: 60\nsafety_margin_s: 5\nseed: 1337\ndeterministic: true\nthreads: 1\n"
    )


def _lock_text(pins: list[Pin]) -> str:
    lines = [
        "# spectramind-lock: requirements-in-sha256=" + "0" * 64 + " target=test image=test-image "
        "image-sha256=" + "0" * 64,
        "#",
    ]
    for pin in sorted(pins, key=lambda p: p.name):
        digest = hashlib.sha256((pin.sdist or pin.wheel).read_bytes()).hexdigest()
        lines += [
            f"{pin.name}=={pin.version} \\",
            f"    --hash=sha256:{digest}",
            "    # via -r requirements.in",
        ]
    return "\n".join(lines) + "\n"


def write_manifest(
    root: Path,
    *,
    target: dict[str, Any],
    image: dict[str, str],
    skipped: list[dict[str, str]],
    built: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    entries = file_entries(root)
    lock = root / "requirements.lock"
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "bundle_sha256": bundle_sha256(entries),
        "target": target,
        "image": image,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
        "git_commit": "0" * 40,
        "created": "2020-01-01T00:00:00Z",
        "files": entries,
        "skipped": skipped,
        "built": built or [],
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def make_bundle(root: Path, spec: BundleSpec) -> Path:
    """Write a bundle at ``root`` (boot files from this checkout) and return it."""
    (root / "boot").mkdir(parents=True)
    (root / "wheels").mkdir()
    shutil.copy2(REPO / "bin" / "kaggle-boot.sh", root / "boot" / "kaggle-boot.sh")
    shutil.copy2(REPO / "src" / "spectramind" / "shim.py", root / "boot" / "shim.py")
    for pin in spec.pins:
        if pin.ship:
            shutil.copy2(pin.wheel, root / "wheels" / pin.wheel.name)
    for extra in (spec.spectramind, spec.uv):
        if extra is not None:
            shutil.copy2(extra, root / "wheels" / extra.name)
    lock_pins = list(spec.pins)
    if spec.uv is not None:
        lock_pins.append(Pin("uv", importlib.metadata.version("uv"), spec.uv))
    (root / "requirements.lock").write_text(_lock_text(lock_pins))
    (root / "configs" / "env").mkdir(parents=True)
    (root / "configs" / "env" / "kaggle.yaml").write_text(spec.env_profile)
    (root / "dataset-metadata.json").write_text(
        json.dumps({"id": "tester/spectramind-test-bundle", "title": "test bundle", "licenses": []})
    )
    skipped = [{"name": p.name, "version": p.version} for p in spec.pins if not p.ship]
    built = [
        {
            "name": p.name,
            "version": p.version,
            "filename": p.wheel.name,
            "origin": "built",
            "sha256": hashlib.sha256(p.wheel.read_bytes()).hexdigest(),
            "size": p.wheel.stat().st_size,
        }
        for p in spec.pins
        if p.sdist is not None
    ]
    write_manifest(root, target=spec.target, image=spec.image, skipped=skipped, built=built)
    return root


def make_data(root: Path, planets: int = 3) -> Path:
    """A competition data folder holding only sample_submission.csv (what boot's fallback needs)."""
    root.mkdir(parents=True, exist_ok=True)
    header = "planet_id,wl_1,wl_2,sigma_1,sigma_2\n"
    rows = "".join(f"{1000 + i},0.1,0.1,0.01,0.01\n" for i in range(planets))
    (root / "sample_submission.csv").write_text(header + rows)
    return root
