"""What a run leaves behind: the submission checks, the environment facts and the two records."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from .base import COMPETITION, DEBUG_LOG_NAME, DEGRADED_NAME, SUMMARY_NAME, atomic_write


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


def environment_info(profile: dict[str, str], timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Python/platform/torch/CUDA/GPU facts, from a subprocess of this interpreter with the command's
    environment (the activated delta), so the record says what the command saw."""
    args = [profile.get("seed", "1337"), profile.get("deterministic", "true"), profile.get("threads", "0")]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _INFO_SCRIPT, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return data
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as exc:
        return {"python": platform.python_version(), "platform": platform.platform(), "info_error": repr(exc)}


def determinism_env() -> dict[str, str | None]:
    names = (
        "PYTHONHASHSEED",
        "CUBLAS_WORKSPACE_CONFIG",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    )
    return {k: os.environ.get(k) for k in names}


def clear_records(out: Path) -> None:
    """Before the command runs: only this run's command may leave a record or say it is degraded."""
    for name in (SUMMARY_NAME, DEGRADED_NAME):
        (out / name).unlink(missing_ok=True)


def write_boot_records(out: Path, summary: dict[str, Any]) -> None:
    """Boot's records, keeping the record the command wrote itself (train's MLflow run id and weights
    sha256, predict's own) under ``command_record`` instead of overwriting it."""
    try:
        own = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        own = None
    write_records(out, {**summary, "command_record": own} if isinstance(own, dict) else summary)


def write_records(out: Path, summary: dict[str, Any]) -> None:
    """``run_hash_summary_v50.json`` (atomic) and one appended entry of ``v50_debug_log.md``."""
    atomic_write(
        out / SUMMARY_NAME, (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode()
    )
    exit_ = summary.get("exit", {})
    budget, timings = summary.get("budget", {}), summary.get("timings_s", {})
    drift = summary.get("drift") or []
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
        f"- delta: {_delta_line(summary)}",
        f"- verification: {_verify_line(summary)}",
        "- image drift: "
        + (", ".join(f"{d['name']} {d['locked']} -> {d['found']}" for d in drift) or "none"),
        f"- submission: {summary.get('submission')}",
    ]
    if exit_.get("error"):
        lines.append(f"- error: {exit_['error']}")
    with (out / DEBUG_LOG_NAME).open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")


def _delta_line(summary: dict[str, Any]) -> str:
    act, inst = summary.get("activate") or {}, summary.get("install") or {}
    if inst.get("installer"):
        return (
            f"installed at boot by {inst['installer']}: {len(inst.get('installed', []))} package(s), "
            f"{len(inst.get('satisfied', []))} already satisfied"
        )
    if act.get("site"):
        return (
            f"{act.get('distributions')} distribution(s) activated in place from site/ (pyc {act.get('pyc')})"
        )
    return "nothing to activate"


def _verify_line(summary: dict[str, Any]) -> str:
    v = summary.get("verification") or {}
    if not v:
        return "not run"
    state = {True: "all files match", False: f"MISMATCH {v.get('modified')}", None: "unfinished"}[v.get("ok")]
    return f"{v.get('mode')}: {state}; full hashing done {v.get('full_done_s')} s after start"
