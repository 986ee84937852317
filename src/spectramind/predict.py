"""``spectramind predict``: budget-aware, incremental, interruptible, optionally distributed.

Modes (``predict.mode``): ``full`` (calibration + model refinement), ``calibration`` (the plain
calibration baseline), ``fallback`` (the prior for every planet, in seconds, without torch).

Budget: the deadline is $SPECTRAMIND_DEADLINE, else now + $SPECTRAMIND_BUDGET_S, else now +
env.budget_s - env.safety_margin_s. Per-visit calibration and per-planet refinement costs are
measured as planets complete; each planet gets the best level that still fits (full, then
calibration only, then the prior). ``submission.csv`` is valid from the first second (all prior)
and is rewritten atomically as planets finish. SIGINT/SIGTERM flush it and exit 124.

Exit codes: 0 every planet was predicted; 124 the budget ran out or the run was interrupted (the
submission is valid, the missing planets carry the prior); 1 an error (``predict.on_error=raise``).

Degraded runs: in ``full`` mode without usable model weights the planets are calibrated only. The
submission is still written and the exit code stays 0 (it is a valid submission), but the run is
marked degraded: a warning is logged, ``predict_summary.json`` has ``degraded`` (the reason), and
``<output>/DEGRADED`` holds one line of JSON, ``{"command": "predict", "reason": "..."}``, for the
boot shim's run record. A run that is not degraded removes a ``DEGRADED`` left by an earlier one.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from omegaconf import DictConfig

from spectramind.dataio import list_planets, planet_dir, read_adc, visits
from spectramind.errors import EXIT_BUDGET, DataError, SpectraMindError
from spectramind.runtime import RunPaths, log
from spectramind.shim import atomic_write
from spectramind.submission import SubmissionWriter, format_row, prior

FULL, CALIBRATION, PRIOR = "full", "calibration", "prior"
DEGRADED_NAME = "DEGRADED"
MODES = (FULL, CALIBRATION, "fallback")
SECONDS_PER_MB = 0.03  # a conservative first guess of calibration speed (measured: ~0.02 s/MB on 1 CPU)
Pair = tuple[np.ndarray, np.ndarray]


class Interrupted(BaseException):
    """Raised by the SIGINT/SIGTERM handler; BaseException so no `except Exception` swallows it."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@dataclass
class CostModel:
    """Running means of measured costs: seconds per visit calibrated, per planet refined."""

    calib_s: list[float] = field(default_factory=list)
    refine_s: list[float] = field(default_factory=list)
    guess_calib_s: float = 0.0  # used until the first visit is measured (from the signal files' size)

    @staticmethod
    def _mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    def choose(
        self, time_left: float, visits_here: int, visits_left: int, planets_left: int, reserve: float
    ) -> str:
        """The best level for the next planet that keeps the whole run inside the budget."""
        spare = time_left - reserve
        calib = self._mean(self.calib_s) if self.calib_s else self.guess_calib_s
        refine = self._mean(self.refine_s)
        if spare <= 0 or spare < 1.2 * visits_here * calib:
            return PRIOR
        if refine > 0 and spare < visits_left * calib + planets_left * refine:
            return CALIBRATION  # not enough for everything: skip refinement to save its share
        return FULL


@dataclass
class Outcome:
    levels: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    interrupted: str | None = None
    degraded: str | None = None  # why this run is worse than its mode promises (no model weights)


def _settings(cfg: DictConfig) -> dict[str, Any]:
    p = cfg.get("predict") or {}
    mode = str(p.get("mode", FULL))
    if mode not in MODES:
        raise SpectraMindError(f"unknown predict.mode '{mode}'", fix=f"use one of {', '.join(MODES)}")
    return {
        "mode": mode,
        "split": str(p.get("split", "test")),
        "distributed": bool(p.get("distributed", False)),
        "flush_every_s": float(p.get("flush_every_s", 5.0)),
        "reserve_s": float(p.get("reserve_s", 5.0)),
        "on_error": str(p.get("on_error", "prior")),
        "check_bounds": bool(p.get("check_bounds", False)),
    }


def _fallback(paths: RunPaths, split: str, started: float, *, as_json: bool = False) -> int:
    """Write the prior-only submission (no torch, seconds)."""
    from spectramind.runtime import print_json

    planets = list_planets(paths.data, split)
    fallback = prior(paths.data / "train.csv")
    SubmissionWriter(paths.output / "submission.csv", planets, fallback).flush()
    mark_degraded(paths.output, None)  # the prior is what this mode promises
    seconds = time.time() - started
    log(
        f"predict: fallback submission ({fallback.source} prior) for {len(planets)} planets in {seconds:.2f}s"
    )
    if as_json:
        submission = str(paths.output / "submission.csv")
        print_json({"planets": len(planets), "mode": "fallback", "exit_code": 0, "submission": submission})
    return 0


Refiner = Callable[[np.ndarray, np.ndarray], Pair]


def mark_degraded(output: Path, reason: str | None) -> None:
    """Write ``<output>/DEGRADED`` (one line of JSON with the reason), or remove an earlier run's."""
    path = output / DEGRADED_NAME
    if reason is None:
        path.unlink(missing_ok=True)
        return
    atomic_write(path, (json.dumps({"command": "predict", "reason": reason}, sort_keys=True) + "\n").encode())


def _bounds(opts: dict[str, Any], paths: RunPaths) -> dict[str, Any]:
    """``predict.check_bounds``: the optional symbolic extra's check of submission.csv (z3, imported then)."""
    if not opts["check_bounds"]:
        return {}
    from spectramind.symbolic import check_output

    return {"bounds": check_output(paths.output / "submission.csv", paths.data / "wavelengths.csv")}


def _write_summary(output: Path, summary: dict[str, Any]) -> None:
    """``predict_summary.json``, and the ``DEGRADED`` mark that goes with it."""
    mark_degraded(output, summary["degraded"])
    atomic_write(output / "predict_summary.json", json.dumps(summary, indent=2, sort_keys=True).encode())


def _refiner(opts: dict[str, Any], paths: RunPaths) -> tuple[Refiner | None, str | None]:
    """The model's refine step, or None: (calibration mode) or (weights unusable: the degraded reason)."""
    if opts["mode"] != FULL:
        return None, None
    from spectramind.model import load, refine

    try:
        model = load(paths.weights)
    except SpectraMindError as error:
        reason = f"no model refinement, calibration only: {error.what} ({error.where})"
        log(f"predict: WARNING degraded run: {reason}")
        return None, reason
    return (lambda depth, sigma: refine(model, depth, sigma)), None


def _first_guess(paths: RunPaths, split: str, planets: list[str]) -> float:
    """Seconds to calibrate one visit, guessed from the size of the first planet's signal files."""
    if not planets:
        return 0.0
    folder = paths.data / split / planets[0]
    sizes = [f.stat().st_size for f in folder.glob("*_signal_0.parquet")]
    return SECONDS_PER_MB * sum(sizes) / 2**20


def _run(
    cfg: DictConfig,
    paths: RunPaths,
    opts: dict[str, Any],
    *,
    rank_planets: list[str],
    writer: SubmissionWriter | None,
    deadline_at: float,
) -> Outcome:
    from spectramind.features import planet_features

    refine_fn, degraded = _refiner(opts, paths)
    adc = read_adc(paths.data)
    chunk, bins = int(cfg.data.get("chunk_steps", 375)), int(cfg.data.get("bin_steps", 5))
    costs, out = CostModel(), Outcome(degraded=degraded)
    n_visits = {}
    for pid in rank_planets:
        try:
            n_visits[pid] = len(visits(planet_dir(paths.data, opts["split"], pid), pid))
        except DataError:
            n_visits[pid] = 1  # reported when the planet is processed
    costs.guess_calib_s = _first_guess(paths, opts["split"], rank_planets[:1])
    try:
        for i, pid in enumerate(rank_planets):
            left = rank_planets[i:]
            level = costs.choose(
                deadline_at - time.time(),
                n_visits[pid],
                sum(n_visits[p] for p in left),
                len(left),
                opts["reserve_s"],
            )
            if level == FULL and refine_fn is None:
                level = CALIBRATION
            out.levels[pid] = level
            if level == PRIOR:
                continue
            t0 = time.perf_counter()
            try:
                feats = planet_features(
                    paths.data, opts["split"], pid, chunk_steps=chunk, bin_steps=bins, adc=adc
                )
            except DataError as error:
                if opts["on_error"] == "raise":
                    raise
                log(f"predict: planet {pid} keeps the prior: {error.render()}")
                out.errors[pid], out.levels[pid] = error.what, PRIOR
                continue
            costs.calib_s.append((time.perf_counter() - t0) / n_visits[pid])
            mu, sigma = feats.depth, feats.sigma
            if level == FULL and refine_fn is not None:
                t1 = time.perf_counter()
                mu, sigma = refine_fn(mu, sigma)
                costs.refine_s.append(time.perf_counter() - t1)
            row = format_row(pid, mu, sigma)
            out.rows[pid] = row
            out.seconds[pid] = round(time.perf_counter() - t0, 3)
            log(f"predict: planet {pid} ({level}, {n_visits[pid]} visit(s)) in {out.seconds[pid]:.2f}s")
            if writer is not None:
                writer.set_row(pid, row)
    except Interrupted as signame:
        out.interrupted = str(signame)
    return out


def _merge(out: Outcome, others: list[Outcome], writer: SubmissionWriter | None) -> None:
    """Rank 0 folds the other ranks' outcomes into its own and into the writer."""
    for part in others:
        out.levels.update(part.levels)
        out.errors.update(part.errors)
        out.rows.update(part.rows)
        out.seconds.update(part.seconds)
        out.degraded = out.degraded or part.degraded
    if writer is not None:
        writer.rows.update(out.rows)


def main(argv: list[str]) -> int:
    from spectramind.cli import command_parser
    from spectramind.config import compose, config_hash, env_profile, find_config_dir, save_snapshot
    from spectramind.runtime import deadline, print_json, run_paths

    args = command_parser("predict").parse_intermixed_args(argv)
    as_json, argv = bool(args.json), list(args.overrides)
    started = time.time()
    config_dir = find_config_dir()
    cfg = compose(argv, config_dir)
    paths, opts, env = run_paths(cfg, config_dir), _settings(cfg), env_profile(cfg)
    if opts["mode"] == "fallback":
        return _fallback(paths, opts["split"], started, as_json=as_json)
    deadline_at = deadline(env.budget_s - env.safety_margin_s, now=started)
    import torch

    from spectramind import distributed
    from spectramind.runtime import apply_determinism

    determinism = apply_determinism(env.seed, env.deterministic, env.threads)
    torch.set_num_threads(1)  # the model is tiny; one thread makes every process layout agree bit for bit
    determinism["torch_threads"] = torch.get_num_threads()
    ctx = distributed.init(opts["distributed"])
    planets = list_planets(paths.data, opts["split"])
    writer = None
    if ctx.is_main:
        save_snapshot(cfg, argv, paths.output)
        writer = SubmissionWriter(
            paths.output / "submission.csv", planets, prior(paths.data / "train.csv"), opts["flush_every_s"]
        )
        writer.flush()
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        log(
            f"predict: {len(planets)} planets, mode {opts['mode']}, rank {ctx.rank}/{ctx.world}, "
            f"{deadline_at - time.time():.0f}s budget, env {env.name}, config sha256 {config_hash(cfg)[:12]}"
        )
        out = _run(
            cfg,
            paths,
            opts,
            rank_planets=distributed.shard(planets, ctx),
            writer=writer,
            deadline_at=deadline_at,
        )
        if out.interrupted is None:
            _merge(out, distributed.gather(ctx, out)[1:], writer)
        if writer is not None:
            writer.flush()
    except Interrupted as signame:  # a second signal during the final flush
        out = Outcome(interrupted=str(signame))
        if writer is not None:
            writer.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    budget_hit = any(level == PRIOR for pid, level in out.levels.items() if pid not in out.errors)
    code = EXIT_BUDGET if out.interrupted or budget_hit else 0
    if out.interrupted is None:
        distributed.shutdown(ctx)
    if ctx.is_main:
        counts = {lvl: sum(1 for v in out.levels.values() if v == lvl) for lvl in (FULL, CALIBRATION, PRIOR)}
        summary = {
            "planets": len(planets),
            "levels": counts,
            "errors": out.errors,
            "interrupted": out.interrupted,
            "world_size": ctx.world,
            "mode": opts["mode"],
            "seconds": round(time.time() - started, 3),
            "seconds_per_planet": round(sum(out.seconds.values()) / max(len(out.seconds), 1), 3),
            "exit_code": code,
            "config_sha256": config_hash(cfg),
            "determinism": determinism,
            "degraded": out.degraded,
            **_bounds(opts, paths),
        }
        _write_summary(paths.output, summary)
        log(f"predict: {counts} -> {paths.output / 'submission.csv'} (exit {code})")
        if as_json:
            print_json({**summary, "submission": str(paths.output / "submission.csv")})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
