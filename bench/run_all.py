"""Run every benchmark once and write docs/benchmarks.md (each figure a ratio measured in this run).

    python bench/run_all.py [--out docs/benchmarks.md] [--skip-nominal]

Needs PyPI (the wheelhouse benchmark downloads the naive way for comparison, ~640 MB; the image lock
benchmark resolves against it once) and a built
bundle (``python -m bundler build``; the boot benchmark builds one when ``dist/bundle`` is absent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _bench(script: str, *args: str) -> dict[str, Any]:
    print(f"running bench/{script} {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _tmpfs() -> bool:
    mounts = Path("/proc/mounts").read_text() if Path("/proc/mounts").is_file() else ""
    return any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts.splitlines())


def _machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {mem_gib:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average at start {os.getloadavg()[0]:.1f}"
    )


def render(results: dict[str, Any], machine: str, when: str) -> str:
    wh, boot, budget, pred = (results[k] for k in ("wheelhouse", "boot", "budget", "predict"))
    thr = pred["throughput"]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `python bench/run_all.py` on {when}. Machine: {machine}.",
        "Every figure is a ratio against the naive way, measured in the same run.",
        "",
        "| what | ours | naive way | ratio |",
        "|---|---|---|---|",
        f"| wheelhouse bytes (target `{wh['target']}`) | {wh['wheelhouse']['bytes'] / 1e6:.1f} MB delta, "
        f"{wh['wheelhouse']['files']} wheels, {wh['wheelhouse']['skipped_in_image']} pins already in the image "
        f"| `pip download` of the whole lock: {wh['naive']['bytes'] / 1e6:.1f} MB, {wh['naive']['files']} files "
        f"| {wh['bytes_ratio_naive_over_wheelhouse']}x smaller |",
        f"| wheelhouse rebuild | warm {wh['warm_s']} s, {wh['requests_warm']} requests "
        f"| cold {wh['cold_s']} s, {wh['requests_cold']} requests | {wh['speedup_cold_over_warm']}x faster |",
        *_boot_rows(boot, "on disk"),
        *_boot_rows(results.get("boot_tmpfs"), "on tmpfs"),
        f"| predict throughput ({thr['planets']} demo planets, CPU) | 2 processes (torchrun, gloo): "
        f"{thr['torchrun_2']['planets_per_s']} planets/s | 1 process: {thr['single']['planets_per_s']} planets/s "
        f"| {thr['torchrun_2']['planets_per_s'] / max(thr['single']['planets_per_s'], 1e-9):.2f}x wall, "
        f"{thr['single']['in_process_s'] / max(thr['torchrun_2']['in_process_s'], 1e-9):.2f}x without "
        f"torchrun's start-up (identical submissions: {thr['identical_submissions']}) |",
        f"| budget overshoot past the hard deadline | shim {budget['shim']['overshoot_s'] * 1000:.1f} ms "
        f"| `subprocess.run(timeout=)`: {budget['naive']['overshoot_s']:.2f} s (grandchild survives; "
        f"capped at {budget['naive']['capped']:g} s) | {budget['naive_over_shim']}x less |",
    ]
    lock = results.get("lock_image")
    if lock:
        lines.append(
            f"| lock against the real Kaggle image (`{lock['image']}`, {lock['image_distributions']} distributions; "
            f"{lock['kept_at_image_version']} of {lock['pins']} pins kept at the image's version) "
            f"| warm {lock['warm_median_s']} s (median of {len(lock['warm_s'])}) | cold {lock['cold_s']} s "
            f"| goal <= {lock['goal_s']:g} s warm: {'met' if lock['meets_goal'] else 'missed'} |"
        )
    if "nominal_memory" in pred:
        mem = pred["nominal_memory"]
        lines.append(
            f"| peak memory, one competition-size planet (`data=nominal`) | {mem['peak_rss_mb']:.0f} MB peak RSS "
            f"| goal 2048 MB | {2048 / max(mem['peak_rss_mb'], 1):.1f}x under the goal |"
        )
    lines += [
        "",
        "Goals: each boot row names its goal; peak memory per planet < 2 GB. Where a goal is missed the "
        "table says so by its numbers.",
        "",
        "## Raw results",
        "",
        "```json",
        json.dumps(results, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _boot_rows(boot: dict[str, Any] | None, where: str) -> list[str]:
    """The zero-install boot rows (bench_boot.py), each a ratio measured side by side, goal named."""
    if not boot:
        return []
    d = boot["demo"]
    med = d["median_s"]
    b = d["bytes"]
    rows = [
        f"| demo bundle ({where}): activate phase ({d['distributions']} distributions, {d['site_files']} files "
        f"in site/) | {med['activate']} s | goal <= 0.05 s | {'met' if med['activate'] <= 0.05 else 'NOT met'} |",
        f"| demo bundle ({where}): boot to command start (start {med['start']} + verify {med['verify']} + check "
        f"{med['check']} + activate {med['activate']} s) | {med['to_command']} s | `cp -a` of the installed "
        f"tree: {med['floor']} s | {d['to_command_over_floor']}x the copy (goal <= 1.0) |",
        f"| demo bundle ({where}): overlapped full verification | {med['full_verify']} s (beside the run) "
        f"| `sha256sum` of the same files: {med['sha256sum']} s | {d['full_verify_over_sha256sum']}x "
        "(goal <= 1.5) |",
        f"| demo delta: bytes as Kaggle receives them (`--dir-mode zip`: site.zip) | {b['site_zip'] / 1e6:.1f} MB "
        f"| the same delta as wheels (`bundle.install=wheels`: wheels.zip) {b['wheels_zip'] / 1e6:.1f} MB "
        f"| {b['site_zip_over_wheels_zip']}x (goal <= 1.1); with `bundle.pyc=false` "
        f"{b['site_zip_no_pyc'] / 1e6:.1f} MB = {b['site_zip_no_pyc_over_wheels_zip']}x |",
    ]
    t = boot.get("torch")
    if t:
        tm, imp = t["median_s"], t["import_s"]
        rows += [
            f"| torch-sized delta ({where}; {t['site_files']} files, {t['site_bytes'] / 1e6:.0f} MB installed): "
            f"boot to command start | {tm['boot_to_command']} s | uv cold install of the same wheel: "
            f"{tm['uv_cold']} s | {t['boot_over_uv_cold']}x (goal <= 0.05) |",
            f"| the same against naive pip | {tm['boot_to_command']} s | `pip install --no-index`: {tm['pip']} s "
            f"| {t['boot_over_pip']}x (goal <= 0.01) |",
            f"| the same with `boot.verify=strict` (everything hashed first) | {tm['strict_to_command']} s "
            f"| uv cold install: {tm['uv_cold']} s | {t['strict_over_uv_cold']}x (goal <= 0.3) |",
            f"| torch-sized: overlapped full verification | {tm['full_verify']} s | `sha256sum`: "
            f"{tm['sha256sum']} s | {t['full_verify_over_sha256sum']}x (goal <= 1.5) |",
            f"| `import torch` from site/ (pyc from the build) | {imp['site']} s | from a normal install: "
            f"{imp['normal_install']} s | {t['import_site_over_normal']}x (goal <= 1.2); without pyc "
            f"{imp['site_no_pyc']} s = {t['import_no_pyc_over_normal']}x; as boot's command while hashing "
            f"runs {imp['boot_command_overlap']} s vs after strict {imp['boot_command_strict']} s = "
            f"{t['import_during_hashing_over_after']}x |",
            f"| torch-sized: bytes as Kaggle receives them (site.zip) | {t['bytes']['site_zip'] / 1e6:.0f} MB "
            f"| the wheel: {t['bytes']['wheel'] / 1e6:.0f} MB | "
            f"{t['bytes']['site_zip'] / t['bytes']['wheel']:.2f}x (goal <= 1.1); with `bundle.pyc=false` "
            f"{t['bytes']['site_zip_no_pyc'] / 1e6:.0f} MB = "
            f"{t['bytes']['site_zip_no_pyc'] / t['bytes']['wheel']:.2f}x |",
        ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--skip-nominal", action="store_true", help="skip the competition-size memory run")
    args = parser.parse_args()
    machine = _machine()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    boot_args = ["--json"] + (
        ["--bundle", str(REPO / "dist" / "bundle")] if (REPO / "dist/bundle").is_dir() else []
    )
    results = {
        "wheelhouse": _bench("bench_wheelhouse.py", "--json"),
        "boot": _bench("bench_boot.py", *boot_args),
        # the same on tmpfs: no disk in anyone's time (the torch-sized part runs on disk only)
        **(
            {"boot_tmpfs": _bench("bench_boot.py", *boot_args, "--skip-torch", "--tmp", "/dev/shm")}
            if _tmpfs()
            else {}
        ),
        "budget": _bench("bench_budget.py", "--json"),
        "predict": _bench("bench_predict.py", *(["--skip-nominal"] if args.skip_nominal else [])),
        "lock_image": _bench("bench_lock_image.py", "--json"),
    }
    text = render(results, machine, when)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
