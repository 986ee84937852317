"""The one runtime module: determinism switches, run paths, the time budget and logging.

Everything that makes two runs agree lives here (`apply_determinism`), so the boot shim can record
exactly what was set. Torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spectramind.errors import SpectraMindError

if TYPE_CHECKING:  # stdlib-only at import: the boot shim calls apply_determinism before anything else
    from omegaconf import DictConfig

ENV_DATA = "SPECTRAMIND_DATA"
ENV_OUTPUT = "SPECTRAMIND_OUTPUT"
ENV_BUNDLE = "SPECTRAMIND_BUNDLE"
ENV_BUDGET = "SPECTRAMIND_BUDGET_S"
ENV_DEADLINE = "SPECTRAMIND_DEADLINE"
CUBLAS_CONFIG = ":4096:8"


def log(message: str) -> None:
    """Progress for humans: one line on stderr (stdout is reserved for --json results)."""
    print(f"[spectramind] {message}", file=sys.stderr, flush=True)


def print_json(data: dict[str, Any]) -> None:
    """The command's machine-readable result: one JSON object on stdout."""
    sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def apply_determinism(seed: int, deterministic: bool = True, threads: int = 0) -> dict[str, Any]:
    """Seed random/numpy/torch, switch torch to deterministic kernels, pin thread counts.

    Returns what was set, for the run record (``run_hash_summary_v50.json``).
    """
    random.seed(seed)
    record: dict[str, Any] = {
        "seed": seed,
        "deterministic": deterministic,
        "threads": threads,
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
    }
    if deterministic:
        # cuBLAS refuses deterministic mode without a workspace config; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_CONFIG)
    record["cublas_workspace_config"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        import numpy as np
    except ImportError:  # callable before anything is installed
        record["numpy"] = None
    else:
        np.random.seed(seed % 2**32)
        record["numpy"] = np.__version__
    try:
        import torch
    except ImportError:  # the fallback path may run before torch is installed
        record["torch"] = None
        return record
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    if threads > 0:
        torch.set_num_threads(threads)
    record.update(
        torch=torch.__version__,
        torch_deterministic=torch.are_deterministic_algorithms_enabled(),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        torch_threads=torch.get_num_threads(),
        cuda=torch.cuda.is_available(),
    )
    return record


@dataclass(frozen=True)
class RunPaths:
    """Where a command reads data, writes output and finds weights."""

    project: Path  # parent of the config directory (the bundle root on Kaggle)
    data: Path
    output: Path
    weights: Path


def _under(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def run_paths(cfg: DictConfig, config_dir: Path | None = None) -> RunPaths:
    """Resolve the data dir ($SPECTRAMIND_DATA > env.data_dir > data.root) and the output dir
    ($SPECTRAMIND_OUTPUT > env.output_dir).

    Relative paths resolve against the project root (the parent of the config directory); relative
    weight paths against $SPECTRAMIND_BUNDLE when it is set.
    """
    from spectramind.config import env_profile, find_config_dir

    project = (config_dir or find_config_dir()).resolve().parent
    env = env_profile(cfg)
    data_value = os.environ.get(ENV_DATA) or env.data_dir or str(cfg.data.root)
    output_value = os.environ.get(ENV_OUTPUT) or env.output_dir
    bundle = os.environ.get(ENV_BUNDLE)
    weights_base = Path(bundle) if bundle else project
    return RunPaths(
        project=project,
        data=_under(project, data_value),
        output=_under(project, output_value),
        weights=_under(weights_base, str(cfg.model.weights)),
    )


def deadline(default_budget_s: float, now: float | None = None) -> float:
    """Unix time of the soft deadline: $SPECTRAMIND_DEADLINE, else $SPECTRAMIND_BUDGET_S, else the default."""
    start = time.time() if now is None else now
    raw_deadline = os.environ.get(ENV_DEADLINE)
    raw_budget = os.environ.get(ENV_BUDGET)
    try:
        if raw_deadline:
            return float(raw_deadline)
        if raw_budget:
            return start + float(raw_budget)
    except ValueError as exc:
        raise SpectraMindError(
            f"time budget is not a number: {exc}",
            where=f"{ENV_DEADLINE}={raw_deadline!r} {ENV_BUDGET}={raw_budget!r}",
            fix="set SPECTRAMIND_DEADLINE to a unix time or SPECTRAMIND_BUDGET_S to seconds",
        ) from exc
    return start + default_budget_s
