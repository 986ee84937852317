"""Boot install benchmark: the shim vs naive pip vs copying an installed tree (the floor).

    python bench/bench_boot.py [--bundle DIR] [--repeat 5] [--tmp DIR] [--json]

All three install the same bundle wheelhouse into a fresh thin venv layered over the recreated
image environment (bundler.sandbox, as ``simulate`` uses), so each one starts from what the
Kaggle image already has:

- shim:  the real boot (``boot/shim.py`` with the command ``true``, no fallback step): verify, plan,
         install with the bundled uv, hashes required, --no-deps. Its own record
         (run_hash_summary_v50.json) gives the phases: ``install`` is what installing adds to boot
         after verification (uv's unpacking and interpreter query run beside verification), and
         ``start + verify + check + install`` is boot from process start to packages installed;
- naive: ``pip install --no-index --find-links wheels`` of every locked ``name==version`` (+ the
         project wheel), what a notebook cell would do (no verification at all);
- floor: ``cp -a`` of the site-packages and bin/ files the shim's install produced (no installer).

Without ``--bundle`` a bundle is built first (``python -m bundler build bundle.weights=[]``).
Prints the median seconds of each and the ratios naive/shim and shim/floor, for the install phase
and for the whole boot up to installed.
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

PHASES = ("start", "verify", "check", "install")


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


def shim_boot(bundle: Path, python: Path, tmp: Path) -> dict[str, float]:
    """Boot the bundle with the command ``true``; the phases as the shim recorded them."""
    out = tmp / "shim-out"
    env = {
        **pip_env(),
        "SPECTRAMIND_FALLBACK": "0",
        "SPECTRAMIND_INPUT": str(tmp / "no-input"),
        "SPECTRAMIND_OUTPUT": str(out),
        "SPECTRAMIND_BUDGET_S": "600",
        "SPECTRAMIND_BOOT_START": f"{time.time():.6f}",
    }
    cmd = [str(python), str(bundle / "boot" / "shim.py"), "--bundle", str(bundle), "--", "true"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"shim boot failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    phases = {k: float(summary["timings_s"][k]) for k in PHASES}
    return {
        "shim": phases["install"],
        "shim_to_installed": sum(phases.values()),
        **{f"shim_{k}": v for k, v in phases.items()},
        "shim_install_uv_wait": float(summary["install"]["uv_wait_s"]),
        "packages": float(len(summary["install"]["installed"])),
    }


def one_round(bundle: Path, base: sandbox.ImageEnv, tmp: Path) -> dict[str, float]:
    env = pip_env()
    shim_env = fresh(base, tmp, "shim")
    naive_env = fresh(base, tmp, "naive")
    floor_env = fresh(base, tmp, "floor")
    reqs = naive_requirements(bundle, tmp / "naive.txt")
    subprocess.run(["sync"], check=False)  # the fresh venvs' writeback is not timed below
    shim = shim_boot(bundle, shim_env / "bin" / "python", tmp)
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
    floor_s = timed(["cp", "-a", f"{shim_env}/lib/.", f"{floor_env}/lib/"], env)
    floor_s += timed(["cp", "-a", f"{shim_env}/bin/.", f"{floor_env}/bin/"], env)
    return {**shim, "naive": naive_s, "floor": floor_s}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--tmp",
        default=None,
        help="where the venvs, caches and copies go (default: the system temp dir); /dev/shm takes "
        "the disk out of every contender's time",
    )
    args = parser.parse_args()
    if args.tmp:  # every contender's temp files too (the shim's uv cache, pip's build dirs)
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
        wheels = len(list((bundle / "wheels").glob("*.whl")))
        rounds = []
        for i in range(args.repeat):
            round_dir = tmp / f"round{i}"
            round_dir.mkdir()
            rounds.append(one_round(bundle, base, round_dir))
    keys = (
        "shim",
        "shim_to_installed",
        "naive",
        "floor",
        *(f"shim_{k}" for k in PHASES),
        "shim_install_uv_wait",
    )
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    result = {
        "bundle": str(bundle),
        "tmp": args.tmp or tempfile.gettempdir(),
        "wheels": wheels,
        "installed_packages": int(rounds[0]["packages"]),
        "repeat": args.repeat,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "naive_over_shim": round(med["naive"] / med["shim"], 2),
        "shim_over_floor": round(med["shim"] / med["floor"], 2),
        "naive_over_shim_to_installed": round(med["naive"] / med["shim_to_installed"], 2),
        "shim_to_installed_over_floor": round(med["shim_to_installed"] / med["floor"], 2),
        "rounds": rounds,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bundle {bundle}: {result['wheels']} wheels, {result['installed_packages']} installed by boot")
        for k, v in result["median_s"].items():  # shim = the install phase; shim_* its boot's phases
            print(f"  {k:<20} {v:8.3f} s")
        print(f"  naive/shim {result['naive_over_shim']}x (goal >= 15x)")
        print(f"  shim/floor {result['shim_over_floor']}x (goal <= 1.3x)")
        print(
            f"  whole boot to installed: naive/boot {result['naive_over_shim_to_installed']}x, "
            f"boot/floor {result['shim_to_installed_over_floor']}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
