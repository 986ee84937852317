"""Hand-built bundles (DESIGN §5) for boot/simulate tests: tiny wheels, a hashed lock, MANIFEST.json.

The delta is installed into ``site/`` by the build's own code (`bundler.siteinstall`), and the
MANIFEST is written with the shim's own `file_entries`/`seal`, so what the tests build is made and
checked by the same code that makes and checks real bundles.
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.siteinstall import Pyc, cached_tree, merge_trees
from spectramind.shim.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, file_entries, seal
from spectramind.shim.target import glibc_version

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
    if args[:1] == ["train"]:  # train writes its own record (the MLflow run id), as the payload's does
        (out / "run_hash_summary_v50.json").write_text('{"mlflow_run_id": "fake-run"}')
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
    install: str = "site"  # or "wheels": boot installs wheels/ with the image's uv or pip
    pyc: bool = True  # compile .pyc for this interpreter (the run env's) into site/
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
    install: str = "site",
    site: list[dict[str, Any]] | None = None,
    pyc: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entries = file_entries(root)
    lock = root / "requirements.lock"
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "target": target,
        "image": image,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
        "git_commit": "0" * 40,
        "created": "2020-01-01T00:00:00Z",
        "files": entries,
        "skipped": skipped,
        "built": built or [],
        "install": install,
        "site": site or [],
        "pyc": pyc or {"mode": "none", "python": None, "reason": "wheels mode"},
    }
    manifest = seal(manifest)
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


SITE_CACHE = Path(tempfile.gettempdir()) / "spectramind-test-site-trees"  # content-addressed, verified


def install_site(root: Path, wheels: list[Path], *, pyc: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Install ``wheels`` into ``root/site`` as the build does; MANIFEST ``site`` and ``pyc``."""
    compiler = Pyc(Path(sys.executable), platform.python_version()) if pyc else Pyc(None, None, "no pyc")
    trees = []
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        trees.append(
            cached_tree(wheel, digest, name=name, version=version, pyc=compiler, cache_dir=SITE_CACHE)
        )
    merge_trees(trees, root / "site")
    site = [{"name": t.name, "version": t.version, "sha256": t.sha256, "files": t.files} for t in trees]
    return site, compiler.manifest()


def make_bundle(root: Path, spec: BundleSpec) -> Path:
    """Write a bundle at ``root`` (boot files from this checkout) and return it."""
    (root / "boot" / "shim").mkdir(parents=True)
    shutil.copy2(REPO / "bin" / "kaggle-boot.sh", root / "boot" / "kaggle-boot.sh")
    for module in (REPO / "src" / "spectramind" / "shim").glob("*.py"):
        shutil.copy2(module, root / "boot" / "shim" / module.name)
    shipped = [pin.wheel for pin in spec.pins if pin.ship]
    shipped += [spec.spectramind] if spec.spectramind is not None else []
    site: list[dict[str, Any]] = []
    pyc: dict[str, Any] | None = None
    if spec.install == "wheels":
        (root / "wheels").mkdir()
        for wheel in shipped:
            shutil.copy2(wheel, root / "wheels" / wheel.name)
    else:
        site, pyc = install_site(root, shipped, pyc=spec.pyc)
    (root / "requirements.lock").write_text(_lock_text(list(spec.pins)))
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
    write_manifest(
        root,
        target=spec.target,
        image=spec.image,
        skipped=skipped,
        built=built,
        install=spec.install,
        site=site,
        pyc=pyc,
    )
    return root


def make_data(root: Path, planets: int = 3) -> Path:
    """A competition data folder holding only sample_submission.csv (what boot's fallback needs)."""
    root.mkdir(parents=True, exist_ok=True)
    header = "planet_id,wl_1,wl_2,sigma_1,sigma_2\n"
    rows = "".join(f"{1000 + i},0.1,0.1,0.01,0.01\n" for i in range(planets))
    (root / "sample_submission.csv").write_text(header + rows)
    return root
