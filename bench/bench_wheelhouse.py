"""Benchmark the wheelhouse: delta bytes vs a naive ``pip download`` of the whole lock; warm vs cold.

One run, real PyPI (``bundle.index_url``), the real lock (``requirements.lock``) and target:

1. cold build: ``build_wheelhouse`` with an empty cache (downloads, sdist builds);
2. warm build: the same inputs again (cache only: no request);
3. naive: ``pip download --no-deps --only-binary=:all: --platform ... -r <lock>`` for the same
   target, ignoring the image (so it downloads torch and everything else the image already has).
   Everything is downloaded and measured, except: pins whose chosen wheel is larger than
   ``--naive-max-mb`` (default 2000 MB; pass 200 to skip torch's ~530 MB) count by the size the
   index reports (PEP 700 ``size``), and sdist-only pins (pip cannot fetch them for a foreign
   platform with ``--only-binary``) count by sdist size. Both are listed in the output.

    python bench/bench_wheelhouse.py [--lock requirements.lock] [--json] [OVERRIDES...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bundler.config import Settings, load
from bundler.fetch import IndexClient
from bundler.image import load_image
from bundler.lockfile import parse_lock
from bundler.tags import marker_applies, marker_environment, target_tags
from bundler.wheelhouse import WheelhouseResult, build_wheelhouse, pick_file


def dir_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.iterdir() if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def timed_build(settings: Settings, lock: Path, dest: Path) -> tuple[WheelhouseResult, float]:
    dest.mkdir(parents=True)
    start = time.perf_counter()
    result = build_wheelhouse(settings, lock=lock, dest=dest)
    return result, time.perf_counter() - start


def naive_plan(
    settings: Settings, lock: Path, max_bytes: int
) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """(pins pip downloads, {pin: index size} not downloaded (too big), {pin: sdist size})."""
    parsed = parse_lock(lock)
    image = load_image(settings.config_dir, settings.target.image)
    env = marker_environment(settings.target, image.python)
    tags = target_tags(settings.target)
    client = IndexClient(settings.bundle.index_url)
    keep: list[str] = []
    too_big: dict[str, int] = {}
    sdists: dict[str, int] = {}
    for pin in parsed.pins:
        if not marker_applies(pin.markers, env):
            continue
        chosen = pick_file(pin, client.project_files(pin.name), tags, f"{lock}:{pin.line}")
        size = chosen.size or 0
        if not chosen.filename.endswith(".whl"):
            sdists[pin.key] = size
        elif size > max_bytes:
            too_big[pin.key] = size
        else:
            keep.append(pin.key)
    return keep, too_big, sdists


def naive_download(settings: Settings, lock: Path, keep: list[str], dest: Path) -> float:
    """``pip download`` the kept pins (with their lock lines and hashes) for the target."""
    parsed = parse_lock(lock)
    lines = lock.read_text().splitlines()
    subset: list[str] = []
    wanted = set(keep)
    for i, pin in enumerate(parsed.pins):
        if pin.key not in wanted:
            continue
        end = parsed.pins[i + 1].line - 1 if i + 1 < len(parsed.pins) else len(lines)
        subset += lines[pin.line - 1 : end]
    sub_lock = dest.parent / "naive.lock"
    sub_lock.write_text("\n".join(subset) + "\n")
    major, minor = settings.target.python.split(".")[:2]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "--disable-pip-version-check",
    ]
    cmd += ["--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", settings.target.abi]
    for platform in settings.target.platforms:
        cmd += ["--platform", platform]
    cmd += ["--index-url", settings.bundle.index_url, "--no-cache-dir", "-d", str(dest), "-r", str(sub_lock)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", default="requirements.lock")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--naive-max-mb", type=float, default=2000.0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    lock = Path(args.lock).resolve()
    with tempfile.TemporaryDirectory(prefix="bench-wheelhouse-") as tmp_name:
        tmp = Path(tmp_name)
        settings = load([*args.overrides, f"bundle.cache_dir={tmp / 'cache'}"])
        cold, cold_s = timed_build(settings, lock, tmp / "cold")
        warm, warm_s = timed_build(settings, lock, tmp / "warm")
        keep, too_big, sdists = naive_plan(settings, lock, int(args.naive_max_mb * 1e6))
        (tmp / "naive").mkdir()
        naive_s = naive_download(settings, lock, keep, tmp / "naive")
        naive_measured, naive_files = dir_bytes(tmp / "naive")
    naive_total = naive_measured + sum(too_big.values()) + sum(sdists.values())
    report: dict[str, Any] = {
        "lock": str(lock),
        "target": settings.target.name,
        "image": settings.target.image,
        "wheelhouse": {
            "files": len(cold.wheels),
            "bytes": cold.bytes_total,
            "built_from_sdist": [w.filename for w in cold.built],
            "skipped_in_image": len(cold.skipped),
        },
        "naive": {
            "files": naive_files + len(too_big) + len(sdists),
            "bytes": naive_total,
            "bytes_downloaded": naive_measured,
            "download_s": round(naive_s, 2),
            "not_downloaded_index_size": too_big,
            "sdist_only_counted_by_size": sdists,
        },
        "bytes_ratio_naive_over_wheelhouse": round(naive_total / max(cold.bytes_total, 1), 1),
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 3),
        "speedup_cold_over_warm": round(cold_s / max(warm_s, 1e-9), 1),
        "requests_cold": cold.network_requests,
        "requests_warm": warm.network_requests,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    mb = 1e6
    rows = [
        ("wheelhouse (delta)", f"{cold.bytes_total / mb:10.1f} MB", f"{len(cold.wheels)} files"),
        ("naive pip download", f"{naive_total / mb:10.1f} MB", f"{report['naive']['files']} files"),
        ("  of which measured", f"{naive_measured / mb:10.1f} MB", f"{naive_files} files"),
        ("  index size only", f"{sum(too_big.values()) / mb:10.1f} MB", ", ".join(too_big) or "-"),
        ("bytes ratio naive/delta", f"{report['bytes_ratio_naive_over_wheelhouse']:10.1f} x", ""),
        ("cold build", f"{cold_s:10.2f} s", f"{cold.network_requests} requests"),
        ("warm rebuild", f"{warm_s:10.2f} s", f"{warm.network_requests} requests"),
        ("speedup cold/warm", f"{report['speedup_cold_over_warm']:10.1f} x", ""),
    ]
    print(f"wheelhouse bench: target={settings.target.name} image={settings.target.image} lock={lock}")
    for name, value, note in rows:
        print(f"{name:<26}{value:>16}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
