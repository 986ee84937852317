"""Boot install benchmark: the shim vs naive pip vs copying an installed tree (the floor).

    python bench/bench_boot.py [--bundle DIR] [--repeat 3] [--json]

All three install the same bundle wheelhouse into a fresh thin venv layered over the recreated
image environment (bundler.sandbox, as ``simulate`` uses), so each one starts from what the
Kaggle image already has:

- shim:  the boot shim's own plan + install (bundled uv when present), hashes required, --no-deps;
- naive: ``pip install --no-index --find-links wheels`` of every locked ``name==version`` (+ the
         project wheel), what a notebook cell would do;
- floor: ``cp -a`` of the site-packages and bin/ files an install produced (no installer at all).

Without ``--bundle`` a bundle is built first (``python -m bundler build bundle.weights=[]``).
Prints the median seconds of each and the ratios naive/shim and shim/floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bundler import sandbox  # noqa: E402 - the repo root is put on sys.path just above
from bundler.image import load_image  # noqa: E402
from bundler.pipenv import pip_env  # noqa: E402
from spectramind.shim import BOOT_ONLY, parse_lock, read_manifest  # noqa: E402

SHIM_INSTALL = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
t0 = time.perf_counter()
bundle, work = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(bundle / "boot"))
import shim
uv = ThreadPoolExecutor(1).submit(shim.extract_uv, bundle, work)  # as Boot does, beside verify/plan
manifest = shim.read_manifest(bundle)
pins = shim.parse_lock((bundle / "requirements.lock").read_text())
plan = shim.plan_install(bundle, manifest, pins)
t1 = time.perf_counter()
uv.result()
t2 = time.perf_counter()
info = shim.install(bundle, plan, work, uv)
t3 = time.perf_counter()
print(len(plan.pins), t1 - t0, t2 - t1, t3 - t2)
"""


def fresh(base: sandbox.ImageEnv, root: Path, name: str) -> Path:
    dest = root / name
    sandbox.run_env(base, dest)
    return dest


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:6])}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def naive_requirements(bundle: Path, dest: Path) -> Path:
    """``name==version`` of every locked package plus the project wheel (no hashes: the naive way)."""
    locked = parse_lock((bundle / "requirements.lock").read_text())
    pins = [f"{p.name}=={p.version}" for p in locked if p.key not in BOOT_ONLY]  # the set boot installs
    pins += [f"spectramind=={w.name.split('-')[1]}" for w in (bundle / "wheels").glob("spectramind-*.whl")]
    dest.write_text("\n".join(pins) + "\n")
    return dest


def one_round(bundle: Path, base: sandbox.ImageEnv, tmp: Path) -> dict[str, float]:
    env = pip_env()
    shim_env = fresh(base, tmp, "shim")
    work = tmp / "work"
    work.mkdir()
    started = time.perf_counter()
    proc = subprocess.run(
        [str(shim_env / "bin" / "python"), "-c", SHIM_INSTALL, str(bundle), str(work)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    shim_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"shim install failed:\n{proc.stderr[-2000:]}")
    naive_env = fresh(base, tmp, "naive")
    reqs = naive_requirements(bundle, tmp / "naive.txt")
    naive_s = timed(
        [
            str(naive_env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(bundle / "wheels"),
            "-r",
            str(reqs),
        ],
        env,
    )
    floor_env = fresh(base, tmp, "floor")
    floor_s = timed(["cp", "-a", f"{shim_env}/lib/.", f"{floor_env}/lib/"], env)
    floor_s += timed(["cp", "-a", f"{shim_env}/bin/.", f"{floor_env}/bin/"], env)
    count, plan_s, uv_wait_s, install_s = (float(x) for x in proc.stdout.split())
    return {
        "shim": shim_s,
        "naive": naive_s,
        "floor": floor_s,
        "packages": count,
        "shim_start_and_plan": plan_s,
        "shim_uv_wait": uv_wait_s,
        "shim_uv_install": install_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp_s:
        tmp = Path(tmp_s)
        bundle = Path(args.bundle).resolve() if args.bundle else tmp / "bundle"
        if not args.bundle:
            subprocess.run(
                [sys.executable, "-m", "bundler", "build", "--out", str(bundle), "bundle.weights=[]"],
                cwd=REPO,
                check=True,
            )
        manifest = read_manifest(bundle)
        image = load_image(REPO / "configs", str(manifest["image"]["name"]))
        packages = sandbox.image_packages(image, [s["name"] for s in manifest.get("skipped") or []])
        base = sandbox.image_env(
            image,
            packages,
            Path(
                os.environ.get("SPECTRAMIND_SIM_CACHE", "~/.cache/spectramind-bundler/sim-envs")
            ).expanduser(),
            find_links=[Path("/opt/wheels")],
            index_url="https://pypi.org/simple",
        )
        rounds = []
        for i in range(args.repeat):
            round_dir = tmp / f"round{i}"
            round_dir.mkdir()
            rounds.append(one_round(bundle, base, round_dir))
    keys = ("shim", "naive", "floor", "shim_start_and_plan", "shim_uv_wait", "shim_uv_install")
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    result = {
        "bundle": str(bundle),
        "wheels": len(list((bundle / "wheels").glob("*.whl"))),
        "installed_packages": int(rounds[0]["packages"]),
        "repeat": args.repeat,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "naive_over_shim": round(med["naive"] / med["shim"], 2),
        "shim_over_floor": round(med["shim"] / med["floor"], 2),
        "rounds": rounds,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bundle {bundle}: {result['wheels']} wheels, {result['installed_packages']} installed by boot")
        for k, v in result["median_s"].items():  # shim_* are parts of shim
            print(f"  {k:<20} {v:8.3f} s")
        print(f"  naive/shim {result['naive_over_shim']}x (goal >= 15x)")
        print(f"  shim/floor {result['shim_over_floor']}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
