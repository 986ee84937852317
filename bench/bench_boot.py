"""Boot benchmark: zero-install boot (activate the bundle's site/ in place) against installing.

    python bench/bench_boot.py [--bundle DIR] [--repeat 3] [--tmp DIR] [--skip-torch] [--json]

Every contender starts from the recreated image environment (bundler.sandbox, as ``simulate`` uses)
in a fresh thin venv, and every ratio is measured side by side in the same run:

demo bundle (``--bundle``, else built with ``bundle.weights=[]``):
- boot:   the real shim (``boot/shim`` with the command ``true``, no fallback step); its record gives
          the phases ``start + verify + check + activate`` = boot to command start;
- floor:  ``cp -a`` of the bundle's installed tree (``site/``) into a fresh directory;
- full verification: the wall time of boot's background hashing against ``sha256sum`` of the same
  files (one process, one thread);
- bytes:  the bundle as Kaggle receives it (each top-level folder zipped, as ``--dir-mode zip`` does)
          against the wheels of the same delta (a ``bundle.install=wheels`` build of the same inputs).

torch-sized delta (torch 2.13.0 CPU from /opt/wheels onto the image without torch; skipped when the
wheel is absent or with ``--skip-torch``): a bundle whose site/ holds torch, installed and compiled
by the build's own code, booted in ``overlap`` and ``strict`` mode, against ``uv pip install`` with an
empty cache and ``pip install --no-index`` of the same wheel; then ``import torch`` from site/ against
a normal install (pyc present), the no-pyc case, and ``import torch`` while boot's hashing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bundler import pack, sandbox  # noqa: E402 - the repo root is put on sys.path just above
from bundler.image import load_image  # noqa: E402
from bundler.pipenv import pip_env  # noqa: E402
from bundler.siteinstall import Pyc, cached_tree, compile_tree, find_pyc, merge_trees  # noqa: E402
from spectramind.shim.manifest import file_sha256, read_manifest  # noqa: E402

PHASES = ("start", "verify", "check", "activate")
TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
IMPORT_TORCH = "import torch"


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:8])}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def boot(bundle: Path, python: Path, tmp: Path, *command: str, mode: str = "overlap") -> dict[str, Any]:
    """Boot ``bundle`` with ``command`` (default ``true``); the shim's own record."""
    out = tmp / f"out-{time.time_ns()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    env.update(
        SPECTRAMIND_OUTPUT=str(out),
        SPECTRAMIND_INPUT=str(tmp / "no-input"),
        SPECTRAMIND_FALLBACK="0",
        SPECTRAMIND_INFO_TIMEOUT_S="0.001",  # the environment facts are not boot's work
        SPECTRAMIND_VERIFY=mode,
        SPECTRAMIND_BOOT_START=f"{time.time():.6f}",
    )
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from shim.main import main; sys.exit(main())"
    cmd = [str(python), "-B", "-c", code, str(bundle / "boot"), "--bundle", str(bundle), "--"]
    proc = subprocess.run(
        [*cmd, *(command or ("true",))], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"boot failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads((out / "run_hash_summary_v50.json").read_text())
    shutil.rmtree(out)
    return summary


def to_command(summary: dict[str, Any]) -> float:
    return sum(float(summary["timings_s"][k]) for k in PHASES)


def deferred_files(bundle: Path) -> list[Path]:
    manifest = read_manifest(bundle)
    return [bundle / e["path"] for e in manifest["files"] if str(e["path"]).startswith(("site/", "weights/"))]


def sha256sum_s(files: list[Path], tmp: Path) -> float:
    listing = tmp / "files.txt"
    listing.write_text("\0".join(map(str, files)))
    started = time.perf_counter()
    with listing.open("rb") as fh:
        subprocess.run(["xargs", "-0", "sha256sum"], stdin=fh, capture_output=True, check=True)
    return time.perf_counter() - started


def zipped_bytes(folder: Path, tmp: Path) -> int:
    """What ``kaggle datasets version --dir-mode zip`` uploads for one top-level folder: its zip."""
    archive = Path(shutil.make_archive(str(tmp / f"zip-{folder.name}"), "zip", root_dir=folder))
    size = archive.stat().st_size
    archive.unlink()
    return size


def without_pyc(site: Path, dest: Path) -> Path:
    """A copy of ``site`` without bytecode: what ``bundle.pyc=false`` ships."""
    shutil.copytree(site, dest, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
    return dest


def image_env(names: list[str], exclude: frozenset[str] = frozenset()) -> sandbox.ImageEnv:
    image = load_image(REPO / "configs", "kaggle-sim-cp311")
    packages = [p for p in sandbox.image_packages(image, names) if p[0].lower() not in exclude]
    cache = Path(
        os.environ.get("SPECTRAMIND_SIM_CACHE", "~/.cache/spectramind-bundler/sim-envs")
    ).expanduser()
    return sandbox.image_env(
        image, packages, cache, find_links=[Path("/opt/wheels")], index_url="https://pypi.org/simple"
    )


def median(rounds: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 4)


# --- the demo bundle ----------------------------------------------------------------------------


def demo(bundle: Path, tmp: Path, repeat: int) -> dict[str, Any]:
    manifest = read_manifest(bundle)
    base = image_env([s["name"] for s in manifest.get("skipped") or []])
    files = deferred_files(bundle)
    rounds = []
    for i in range(repeat):
        run_env = tmp / f"demo-env{i}"
        sandbox.run_env(base, run_env)
        subprocess.run(["sync"], check=False)
        summary = boot(bundle, run_env / "bin" / "python", tmp)
        floor = timed(["cp", "-a", f"{bundle}/site/.", str(tmp / f"floor{i}")])
        rounds.append(
            {
                **{k: float(summary["timings_s"][k]) for k in PHASES},
                "to_command": to_command(summary),
                "floor": floor,
                "full_verify": float(summary["verification"]["full_s"]),
                "sha256sum": sha256sum_s(files, tmp),
            }
        )
        shutil.rmtree(tmp / f"floor{i}")
    wheels_bundle = tmp / "wheels-bundle"
    build = [sys.executable, "-m", "bundler", "build", "--offline", "--out", str(wheels_bundle)]
    subprocess.run(
        [*build, "bundle.weights=[]", "bundle.install=wheels"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    wheel_bytes = sum(p.stat().st_size for p in (wheels_bundle / "wheels").glob("*.whl"))
    site_zip = zipped_bytes(bundle / "site", tmp)
    site_zip_no_pyc = zipped_bytes(without_pyc(bundle / "site", tmp / "site-no-pyc"), tmp)
    wheels_zip = zipped_bytes(wheels_bundle / "wheels", tmp)
    med = {k: median(rounds, k) for k in rounds[0]}
    return {
        "bundle": str(bundle),
        "files": len(manifest["files"]),
        "site_files": len(files),
        "distributions": len(manifest.get("site") or []),
        "median_s": med,
        "to_command_over_floor": round(med["to_command"] / med["floor"], 3),
        "full_verify_over_sha256sum": round(med["full_verify"] / med["sha256sum"], 3),
        "bytes": {
            "site_zip": site_zip,
            "wheels_zip": wheels_zip,
            "delta_wheels": wheel_bytes,
            "site_zip_over_wheels_zip": round(site_zip / wheels_zip, 3),
            "site_zip_no_pyc": site_zip_no_pyc,  # bundle.pyc=false
            "site_zip_no_pyc_over_wheels_zip": round(site_zip_no_pyc / wheels_zip, 3),
        },
        "rounds": rounds,
    }


# --- the torch-sized delta ----------------------------------------------------------------------


def torch_bundle(dest: Path, pyc: Pyc, cache: Path) -> Path:
    """A bundle whose site/ is torch alone, made by the build's own install, compile and manifest code."""
    tree = cached_tree(
        TORCH_WHEEL,
        file_sha256(TORCH_WHEEL),
        name="torch",
        version="2.13.0+cpu",
        pyc=pyc,
        cache_dir=cache,
    )
    merge_trees([tree], dest / "site")
    (dest / "boot" / "shim").mkdir(parents=True)
    shutil.copy2(REPO / "bin" / "kaggle-boot.sh", dest / "boot" / "kaggle-boot.sh")
    for module in (REPO / "src" / "spectramind" / "shim").glob("*.py"):
        shutil.copy2(module, dest / "boot" / "shim" / module.name)
    compile_tree(dest / "boot" / "shim", pyc, "boot/shim")  # as the build does
    major, minor = sys.version_info[:2]
    pack.write_manifest(
        dest,
        {
            "target": {"python": f"{major}.{minor}", "abi": f"cp{major}{minor}", "platforms": []},
            "image": {"name": "kaggle-sim-cp311 without torch", "sha256": "0" * 64},
            "install": "site",
            "site": [{"name": "torch", "version": "2.13.0+cpu", "sha256": tree.sha256, "files": tree.files}],
            "pyc": pyc.manifest(),
        },
    )
    return dest


def import_s(python: Path, env: dict[str, str], repeat: int, fresh_prefix: Path | None = None) -> float:
    times = []
    for i in range(repeat):
        run_env = dict(env)
        if fresh_prefix is not None:  # the no-pyc case: every import compiles anew
            run_env["PYTHONPYCACHEPREFIX"] = str(fresh_prefix / str(i))
        times.append(timed([str(python), "-c", IMPORT_TORCH], run_env))
    return statistics.median(times)


def activated_env(bundle: Path, tmp: Path) -> dict[str, str]:
    from spectramind.shim.activate import activate

    env = dict(os.environ)
    activate(bundle, read_manifest(bundle), tmp / f"act-{time.time_ns()}", env)
    return env


def torch_sized(tmp: Path, repeat: int) -> dict[str, Any]:
    base = image_env(["torch"], exclude=frozenset({"torch"}))
    cache = tmp / "site-cache"
    pyc = find_pyc(f"{sys.version_info[0]}.{sys.version_info[1]}")
    started = time.perf_counter()
    bundle = torch_bundle(tmp / "torch-bundle", pyc, cache)
    build_s = time.perf_counter() - started
    nopyc_bundle = torch_bundle(tmp / "torch-bundle-nopyc", Pyc(None, None, "bench"), cache)
    wheel_dir = tmp / "torch-wheel"
    wheel_dir.mkdir()
    shutil.copy2(TORCH_WHEEL, wheel_dir / TORCH_WHEEL.name)
    files = deferred_files(bundle)
    rounds = []
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    for i in range(repeat):
        envs = {name: tmp / f"torch-{name}{i}" for name in ("boot", "strict", "uv", "pip")}
        for path in envs.values():
            sandbox.run_env(base, path)
        subprocess.run(["sync"], check=False)
        overlap = boot(bundle, envs["boot"] / "bin" / "python", tmp)
        strict = boot(bundle, envs["strict"] / "bin" / "python", tmp, mode="strict")
        uv_env = dict(pip_env(), UV_CACHE_DIR=str(tmp / f"uv-cache{i}"), UV_NO_CONFIG="1")
        wanted = ("--no-index", "--find-links", str(wheel_dir), "--no-deps", "torch==2.13.0+cpu")
        uv_s = timed([uv, "pip", "install", "--python", str(envs["uv"] / "bin" / "python"), *wanted], uv_env)
        pip_s = timed([str(envs["pip"] / "bin" / "python"), "-m", "pip", "install", *wanted], pip_env())
        rounds.append(
            {
                "boot_to_command": to_command(overlap),
                "strict_to_command": to_command(strict),
                "uv_cold": uv_s,
                "pip": pip_s,
                "full_verify": float(overlap["verification"]["full_s"]),
                "sha256sum": sha256sum_s(files, tmp),
            }
        )
        for path in envs.values():
            if path.name.startswith(("torch-boot", "torch-strict", "torch-uv")):
                shutil.rmtree(path)
    pip_python = envs["pip"] / "bin" / "python"  # a normal install, pyc written by pip
    import_env = tmp / "torch-import-env"
    sandbox.run_env(base, import_env)
    site_python = import_env / "bin" / "python"
    imports = {
        "normal_install": import_s(pip_python, pip_env(), repeat + 2),
        "site": import_s(site_python, activated_env(bundle, tmp), repeat + 2),
        "site_no_pyc": import_s(site_python, activated_env(nopyc_bundle, tmp), repeat, tmp / "pycache"),
    }
    # import torch as boot's command, while boot's background hashing runs, against strict (hashed before)
    during = [
        float(boot(bundle, site_python, tmp, sys.executable, "-c", IMPORT_TORCH)["timings_s"]["run"])
        for _ in range(repeat)
    ]
    after = [
        float(
            boot(bundle, site_python, tmp, sys.executable, "-c", IMPORT_TORCH, mode="strict")["timings_s"][
                "run"
            ]
        )
        for _ in range(repeat)
    ]
    imports["boot_command_overlap"] = statistics.median(during)
    imports["boot_command_strict"] = statistics.median(after)
    med = {k: median(rounds, k) for k in rounds[0]}
    return {
        "wheel": TORCH_WHEEL.name,
        "wheel_bytes": TORCH_WHEEL.stat().st_size,
        "site_files": len(files),
        "site_bytes": sum(p.stat().st_size for p in files),
        "first_build_s": round(build_s, 2),
        "pyc": pyc.manifest(),
        "median_s": med,
        "boot_over_uv_cold": round(med["boot_to_command"] / med["uv_cold"], 4),
        "boot_over_pip": round(med["boot_to_command"] / med["pip"], 4),
        "strict_over_uv_cold": round(med["strict_to_command"] / med["uv_cold"], 4),
        "full_verify_over_sha256sum": round(med["full_verify"] / med["sha256sum"], 3),
        "import_s": {k: round(v, 3) for k, v in imports.items()},
        "import_site_over_normal": round(imports["site"] / imports["normal_install"], 3),
        "import_no_pyc_over_normal": round(imports["site_no_pyc"] / imports["normal_install"], 3),
        "import_during_hashing_over_after": round(
            imports["boot_command_overlap"] / imports["boot_command_strict"], 3
        ),
        "bytes": {
            "site_zip": zipped_bytes(bundle / "site", tmp),
            "site_zip_no_pyc": zipped_bytes(nopyc_bundle / "site", tmp),
            "wheel": TORCH_WHEEL.stat().st_size,
        },
        "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--tmp", default=None, help="where every contender's files go (/dev/shm: no disk)")
    args = parser.parse_args()
    if args.tmp:
        os.environ["TMPDIR"] = args.tmp
        tempfile.tempdir = None
    with tempfile.TemporaryDirectory(prefix="bench-boot-", dir=args.tmp) as tmp_s:
        tmp = Path(tmp_s)
        bundle = Path(args.bundle).resolve() if args.bundle else tmp / "bundle"
        if not args.bundle:
            subprocess.run(
                [sys.executable, "-m", "bundler", "build", "--out", str(bundle), "bundle.weights=[]"],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        result: dict[str, Any] = {"tmp": args.tmp or tempfile.gettempdir(), "repeat": args.repeat}
        result["demo"] = demo(bundle, tmp, args.repeat)
        if not args.skip_torch and TORCH_WHEEL.is_file():
            result["torch"] = torch_sized(tmp, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
