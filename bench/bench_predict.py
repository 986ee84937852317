"""Benchmark ``spectramind predict`` on CPU.

1. Throughput: planets/s for one process vs ``torchrun --nproc-per-node 2`` (gloo) on the default
   (demo-sized) synthetic data, after a short training run.
2. Memory: peak RSS while calibrating one planet at ``data=nominal`` size (11,250 AIRS x 32x356 and
   135,000 FGS1 x 32x32 steps), streamed one chunk at a time; goal < 2 GB per planet.

Usage: ``python bench/bench_predict.py [--work DIR] [--planets N] [--skip-nominal] [--json FILE]``.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MEMORY_PROBE = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
from spectramind.features import planet_features
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
root, pid, chunk, bins = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = rss_mb()
t0 = time.perf_counter()
feats = planet_features(root, 'test', pid, chunk_steps=chunk, bin_steps=bins)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({'baseline_rss_mb': round(base, 1), 'peak_rss_mb': round(peak, 1),
                  'per_planet_mb': round(peak - base, 1), 'seconds': round(seconds, 2),
                  'finite': bool(np.isfinite(feats.depth).all())}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    return {**env, "SPECTRAMIND_CONFIG_DIR": str(REPO / "configs"), "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def throughput(work: Path, planets: int) -> dict[str, object]:
    from spectramind.synth import make_dataset

    data = work / "demo"
    if not (data / "test_labels.csv").is_file():
        make_dataset(data, n_train=6, n_test=planets, airs_steps=375, fgs_steps=4500, seed=21)
    weights = work / "weights.pt"
    common = [f"data.root={data}", f"model.weights={weights}"]
    spectramind = [sys.executable, "-m", "spectramind.cli"]
    _run([*spectramind, "train", *common, f"env.output_dir={work / 'train'}", "model.epochs=60"])
    result: dict[str, object] = {"planets": planets}
    for name, launcher in (
        ("single", spectramind),
        (
            "torchrun_2",
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                "2",
                "-m",
                "spectramind.cli",
            ],
        ),
    ):
        out = work / name
        wall = _run([*launcher, "predict", *common, f"env.output_dir={out}"])
        summary = json.loads((out / "predict_summary.json").read_text())
        result[name] = {
            "wall_s": round(wall, 2),
            "in_process_s": summary["seconds"],
            "planets_per_s": round(planets / wall, 3),
            "levels": summary["levels"],
        }
    single = (work / "single" / "submission.csv").read_bytes()
    result["identical_submissions"] = single == (work / "torchrun_2" / "submission.csv").read_bytes()
    return result


def nominal_memory(work: Path) -> dict[str, object]:
    from spectramind.synth import make_dataset

    data = work / "nominal"
    started = time.perf_counter()
    if not (data / "test_labels.csv").is_file():
        make_dataset(data, n_train=0, n_test=1, airs_steps=11250, fgs_steps=135000, seed=7, chunk_steps=375)
    generated = time.perf_counter() - started
    pid = next(p.name for p in (data / "test").iterdir())
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(data), pid, "375", "30"],
        env=_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, object] = json.loads(probe.stdout)
    report["make_data_s"] = round(generated, 1)
    report["bytes_on_disk_mb"] = round(
        sum(f.stat().st_size for f in (data / "test").rglob("*") if f.is_file()) / 2**20
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/spectramind-bench"))
    parser.add_argument("--planets", type=int, default=24, help="test planets for the throughput run")
    parser.add_argument("--skip-nominal", action="store_true", help="skip the nominal-size memory run")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"cpus": os.cpu_count(), "throughput": throughput(args.work, args.planets)}
    if not args.skip_nominal:
        report["nominal_memory"] = nominal_memory(args.work)
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
