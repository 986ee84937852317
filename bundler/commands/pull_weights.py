"""``python -m bundler pull-weights``: the training kernel's weights, from Kaggle into the DVC workspace.

Steps: resolve the weights path (``model.weights``, inside a ``bundle.weights`` entry so the build
packs it) and check the project is a DVC repository -> wait for the kernel run to end (ERROR or
cancelled: an error naming its log) -> download its output through the Kaggle API -> check the
weights file is there, matches the sha256 its ``train_summary.json`` records and loads as a model ->
place it at ``model.weights`` atomically -> ``dvc add`` it (on failure the previous file is put back).
The next ``python -m bundler build`` then packs the weights as ``tracked``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bundler import dvc, kernels, tempdirs
from bundler.commands.push import POLL_ENV, SUMMARY_NAME
from bundler.config import Settings, load
from bundler.errors import BundlerError, UsageError, VerificationError
from bundler.kaggle_api import KaggleAdapter, require_credentials
from bundler.output import Result, console
from spectramind.errors import SpectraMindError
from spectramind.shim.manifest import file_sha256

TRAIN_SUMMARY = "train_summary.json"
FIX_RERUN = (
    "fix the cause, run the kernel again (python -m bundler push BUNDLE_DIR --kernel "
    f"{kernels.TRAIN_KERNEL} --wait), then pull again"
)


@dataclass(frozen=True)
class Plan:
    """What to pull and where it goes, resolved once."""

    kernel: str  # owner/slug
    root: Path  # the project (the DVC repository)
    weights: str  # model.weights, relative to the project and to the kernel's output dir
    out: Path  # where the kernel's output and log are kept


def _plan(args: argparse.Namespace, settings: Settings) -> Plan:
    raw = str(settings.cfg.get("model", {}).get("weights") or "")
    rel = PurePosixPath(raw)
    if not raw or rel.is_absolute() or ".." in rel.parts:
        raise UsageError(
            f"model.weights {raw!r} is not a path inside the project",
            where="configs/model (weights)",
            fix="set model.weights to a relative path such as weights/v50.pt",
        )
    entries = [PurePosixPath(e) for e in settings.bundle.weights]
    if not any(rel == e or e in rel.parents for e in entries):
        raise UsageError(
            f"model.weights {raw} is outside every bundle.weights entry: the build would not pack it",
            where="configs/bundle (weights)",
            fix=f"add its folder to bundle.weights (now {', '.join(map(str, entries)) or 'empty'})",
        )
    if not dvc.is_repo(settings.root):
        raise UsageError(
            "the project is not a DVC repository: the pulled weights could not be tracked",
            where=str(settings.root / ".dvc"),
            fix="run `dvc init` (and `dvc remote add -d NAME URL`) in the project",
        )
    if args.kernel:
        ref = str(args.kernel)
        kernels.split_ref(ref, what="--kernel", where="pull-weights --kernel")
    else:
        owner, _ = kernels.split_ref(settings.bundle.dataset, what="bundle.dataset", where="configs/bundle")
        ref = f"{owner}/{kernels.TRAIN_KERNEL}"
    slug = ref.rsplit("/", 1)[-1]
    return Plan(ref, settings.root, rel.as_posix(), settings.root / "outputs" / "kernel-output" / slug)


def run(args: argparse.Namespace) -> Result:
    settings = load(list(args.overrides or []), args.config_dir)
    plan = _plan(args, settings)
    adapter = KaggleAdapter(
        timeout_s=float(args.timeout),
        poll_s=float(os.environ.get(POLL_ENV) or 5.0),
        timeout_option="pull-weights --timeout",
    )
    credentials = require_credentials()
    with console.status(f"kernel {plan.kernel}: waiting for the run to end"):
        outcome = adapter.wait_kernel(
            plan.kernel, on_poll=lambda status: console.print(f"kernel {plan.kernel}: {status}")
        )
    with console.status(f"kernel {plan.kernel}: downloading its output"):
        try:
            files = _download(adapter, plan)
        except BundlerError:
            if outcome.status == "COMPLETE":
                raise
            files = []  # a failed run may have nothing to fetch: its status is the error to report
    log = plan.out / f"{plan.kernel.rsplit('/', 1)[-1]}.log"
    log_where = str(log) if log.is_file() else f"the kernel page of {plan.kernel} (no log was downloaded)"
    if outcome.status != "COMPLETE":
        raise BundlerError(
            f"training kernel {plan.kernel} ended {outcome.status}: {outcome.failure or 'no message'}; "
            "no weights were pulled",
            where=log_where,
            fix="read the kernel log, " + FIX_RERUN,
        )
    pulled = plan.out / plan.weights
    if not pulled.is_file():
        raise BundlerError(
            f"the output of kernel {plan.kernel} has no {plan.weights} "
            f"(it has: {', '.join(files) or 'no files'})",
            where=str(plan.out),
            fix="the kernel must run `spectramind train env=kaggle`, which writes /kaggle/working/"
            f"{plan.weights}; read its log ({log_where}), " + FIX_RERUN,
        )
    check = _check(pulled, plan.out)
    target = plan.root / plan.weights
    pointer = _place_and_track(pulled, target, plan)
    console.print(f"weights {plan.weights}: sha256 {check['sha256'][:12]}, tracked by {pointer.name}")
    data = {
        "kernel": plan.kernel,
        "status": outcome.status,
        "credentials": credentials,
        "output_dir": str(plan.out),
        "files": files,
        "log": str(log) if log.is_file() else None,
        "weights": {"path": str(target), **check},
        "dvc_file": str(pointer),
    }
    rows = [
        ("kernel", f"{plan.kernel} ({outcome.status})"),
        ("output", str(plan.out)),
        ("weights", f"{target} ({check['size']} bytes)"),
        ("sha256", f"{check['sha256']} (record: {check['record']})"),
        (
            "epochs",
            f"{check['epochs_run']}" + (" (stopped at the time budget)" if check["stopped_early"] else ""),
        ),
        ("dvc", f"{pointer} (next: git add it, dvc push, python -m bundler build)"),
    ]
    messages = [f"warning: {w}" for w in check["warnings"]]
    return Result("pull-weights", data=data, title="pull-weights", rows=rows, messages=messages)


def _download(adapter: KaggleAdapter, plan: Plan) -> list[str]:
    """The run's output and log into ``plan.out`` (replaced as a whole); relative names, sorted."""
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    staging = tempdirs.make(f".{plan.out.name}.staging-", plan.out.parent)
    try:
        adapter.kernel_output(plan.kernel, staging)
        shutil.rmtree(plan.out, ignore_errors=True)
        staging.rename(plan.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p.relative_to(plan.out).as_posix() for p in plan.out.rglob("*") if p.is_file())


def _record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _check(pulled: Path, out: Path) -> dict[str, Any]:
    """sha256 against the run's record, then a real load as a model; any mismatch is exit 3."""
    digest = file_sha256(pulled)
    summary = _record(out / TRAIN_SUMMARY)
    warnings = []
    recorded = summary.get("weights_sha256")
    if recorded is None:
        record = "absent"
        warnings.append(f"the kernel output has no {TRAIN_SUMMARY} with weights_sha256 to check against")
    elif recorded != digest:
        raise VerificationError(
            f"the pulled weights do not match the run's record: sha256 {digest[:12]}..., "
            f"{TRAIN_SUMMARY} says {str(recorded)[:12]}...",
            where=str(pulled),
            fix="pull again (a download was cut short or altered); if it repeats, " + FIX_RERUN,
        )
    else:
        record = "matched"
    from spectramind.model import load as load_model  # torch: only once a file is there to check

    try:
        load_model(pulled)
    except SpectraMindError as exc:
        raise VerificationError(
            f"the pulled weights do not load as a model: {exc.what}",
            where=str(pulled),
            fix="the kernel wrote a broken file: " + FIX_RERUN,
        ) from exc
    stopped = bool(summary.get("stopped_early"))
    if stopped:
        warnings.append(f"training stopped at the time budget after {summary.get('epochs_run')} epochs")
    exit_ = _record(out / SUMMARY_NAME).get("exit") or {}
    return {
        "sha256": digest,
        "size": pulled.stat().st_size,
        "record": record,
        "epochs_run": summary.get("epochs_run"),
        "stopped_early": stopped,
        "run_exit": exit_.get("reason"),
        "warnings": warnings,
    }


def _place_and_track(pulled: Path, target: Path, plan: Plan) -> Path:
    """Put the weights at ``target`` atomically and ``dvc add`` them; a DVC failure restores the old file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.pulled")
    backup = target.with_name(f".{target.name}.previous")
    shutil.copyfile(pulled, staged)
    had_previous = target.is_file()
    if had_previous:
        target.replace(backup)
    staged.replace(target)
    try:
        pointer = dvc.track(plan.root, plan.weights)
    except BundlerError as exc:
        if had_previous:
            backup.replace(target)
        else:
            target.unlink(missing_ok=True)
        raise BundlerError(
            f"`dvc add {plan.weights}` failed, so the pulled weights were not kept "
            f"({'the previous file is back' if had_previous else 'nothing was left there'}): {exc.what}",
            where=str(plan.root),
            fix=f"fix the DVC repository (run `dvc add {plan.weights}` to see DVC's full output), then pull "
            f"again; the downloaded file stays at {pulled}",
        ) from exc
    backup.unlink(missing_ok=True)
    return pointer
