"""``python -m bundler push BUNDLE_DIR``: the bundle dataset, then the kernels, through the Kaggle API.

Steps: verify the bundle -> look up the remote dataset -> create it, version it (notes carry the
bundle hash) or skip when the remote already carries this bundle -> wait until READY -> push each
kernel (internet off, bundle attached; ``--kernel NAME`` pushes only the named ones, and the training
kernel only when named) -> with ``--wait``,
poll each run to COMPLETE/ERROR and fetch its outputs and log -> with ``--submit``, submit the finished
version to the code competition (never the training kernel's: it makes no submission).
``--dry-run`` reads everything locally and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bundler import kernels, secrets, tempdirs
from bundler.errors import EXIT_ERROR, UsageError, VerificationError, redact
from bundler.kaggle_api import KaggleAdapter, PushedKernel, credential_source, require_credentials
from bundler.output import Result, console
from spectramind.shim import MANIFEST_NAME, read_manifest, verify_bundle

SUMMARY_NAME = "run_hash_summary_v50.json"
SUBMISSION_NAME = "submission.csv"
POLL_ENV = "SPECTRAMIND_KAGGLE_POLL_S"  # first polling interval in seconds (tests make it small)


@dataclass
class KernelPlan:
    name: str
    folder: Path
    meta: dict[str, Any]
    changes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return str(self.meta.get("id", ""))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{what} not found", where=str(path), fix="build the bundle first") from exc
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}", where=str(path), fix="rebuild it") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{what} is not a JSON object", where=str(path), fix="rebuild it")
    return data


def dataset_ref(bundle: Path) -> str:
    meta = _read_json(bundle / "dataset-metadata.json", "dataset-metadata.json")
    ref = str(meta.get("id", ""))
    owner, _, slug = ref.partition("/")
    if not owner or not slug or "/" in slug:
        raise UsageError(
            f"dataset id {ref!r} is not owner/slug",
            where=str(bundle / "dataset-metadata.json"),
            fix="set bundle.dataset to <kaggle user>/<slug> and rebuild",
        )
    return ref


def plan_kernels(root: Path, bundle_ref: str) -> list[KernelPlan]:
    """Kernel folders under ``root``, their metadata made safe: internet off, the bundle attached."""
    if not root.is_dir():
        return []
    plans = []
    for meta_path in sorted(root.glob("*/kernel-metadata.json")):
        meta = _read_json(meta_path, "kernel-metadata.json")
        plan = KernelPlan(meta_path.parent.name, meta_path.parent, meta)
        if "/" not in plan.ref:
            raise UsageError(
                f"kernel id {plan.ref!r} is not owner/slug", where=str(meta_path), fix="fix the kernel id"
            )
        if meta.get("enable_internet", True) is not False:
            meta["enable_internet"] = False
            plan.changes.append("internet turned off (the bundle installs offline)")
        sources = list(meta.get("dataset_sources") or [])
        if bundle_ref not in sources:
            meta["dataset_sources"] = [*sources, bundle_ref]
            plan.changes.append(f"attached the bundle dataset {bundle_ref}")
        plans.append(plan)
    return plans


def select_kernels(plans: list[KernelPlan], names: list[str], root: Path) -> list[KernelPlan]:
    """The kernels ``names`` asks for (folder name, slug or owner/slug); when empty, all but the
    training kernel: a GPU training run starts only when asked for by name."""
    if not names:
        return [p for p in plans if p.name != kernels.TRAIN_KERNEL]

    def named(plan: KernelPlan, name: str) -> bool:
        return name in (plan.name, plan.ref, plan.ref.rsplit("/", 1)[-1])

    unknown = [n for n in names if not any(named(p, n) for p in plans)]
    if unknown:
        raise UsageError(
            f"no kernel folder named {', '.join(unknown)}",
            where=str(root),
            fix="name one of: " + (", ".join(p.name for p in plans) or "none (build writes them)"),
        )
    return [p for p in plans if any(named(p, n) for n in names)]


def _stage(plan: KernelPlan, where: Path) -> Path:
    """A copy of the kernel folder with the safe metadata (the source folder is left untouched)."""
    target = where / plan.name
    shutil.copytree(plan.folder, target)
    (target / "kernel-metadata.json").write_text(json.dumps(plan.meta, indent=2) + "\n", encoding="utf-8")
    return target


def _upload_entries(bundle: Path) -> list[str]:
    """What the client uploads: top-level files as they are, folders as zips (dir_mode=zip)."""
    out = []
    for entry in sorted(bundle.iterdir()):
        if entry.name == "dataset-metadata.json":
            continue
        out.append(f"{entry.name}.zip (folder)" if entry.is_dir() else entry.name)
    return out


def _check_bundle(bundle: Path) -> dict[str, Any]:
    if not bundle.is_dir():
        raise UsageError("bundle directory not found", where=str(bundle), fix="run python -m bundler build")
    report = verify_bundle(bundle)
    if not report.ok:
        problems = report.errors + [f"modified {p}" for p in report.modified]
        problems += [f"missing {p}" for p in report.missing] + [f"extra {p}" for p in report.extra]
        raise VerificationError(
            "the bundle does not match its MANIFEST.json: " + "; ".join(problems[:5]),
            where=str(bundle / MANIFEST_NAME),
            fix="rebuild with python -m bundler build (never edit a built bundle)",
        )
    secrets.require_clean(bundle)  # the last gate before anything leaves the machine
    return read_manifest(bundle)


def _show_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def commit_mark(commit: str | None, checkout: Path) -> tuple[str, str | None]:
    """The commit for the version notes, ``+dirty`` while ``checkout`` has uncommitted changes
    to tracked files (as ``git describe --dirty``); and a warning then."""
    if not commit:
        return "unknown", None
    proc = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return commit, None  # clean, or not a git checkout: nothing to mark
    changed = len(proc.stdout.splitlines())
    return f"{commit}+dirty", (
        f"the checkout {checkout} has {changed} uncommitted change(s): the version notes say "
        f"{commit}+dirty, as the bundle may hold code no commit has; commit and rebuild for a clean mark"
    )


def run(args: argparse.Namespace) -> Result:
    bundle = Path(args.bundle_dir).resolve()
    manifest = _check_bundle(bundle)
    digest = str(manifest.get("bundle_sha256", ""))
    ref = dataset_ref(bundle)
    checkout = Path(args.config_dir).resolve().parent if args.config_dir else Path.cwd()
    commit, dirty = commit_mark(manifest.get("git_commit"), checkout)
    notes = f"SpectraMind V50 bundle_sha256={digest} git_commit={commit}"
    kernels_root = Path(args.kernels).resolve() if args.kernels else kernels.kernels_beside(bundle)
    plans = select_kernels(plan_kernels(kernels_root, ref), list(args.kernel or []), kernels_root)
    data: dict[str, Any] = {
        "bundle_dir": str(bundle),
        "bundle_sha256": digest,
        "dataset": {"ref": ref, "version_notes": notes},
        "kernels": [],
        "dry_run": bool(args.dry_run),
        "credentials": credential_source() or "none found",
    }
    messages = [f"{p.name}: {change}" for p in plans for change in p.changes]
    if not args.kernel and (kernels_root / kernels.TRAIN_KERNEL).is_dir():
        messages.append(
            f"{kernels.TRAIN_KERNEL}: not pushed; it trains on a GPU, so it runs only when named "
            f"(--kernel {kernels.TRAIN_KERNEL})"
        )
    if dirty:
        messages.insert(0, f"warning: {dirty}")
        data["warnings"] = [dirty]
    if not plans:
        messages.append(f"no kernel folders under {kernels_root}: only the dataset is pushed")
    if args.dry_run:
        return _dry_run(data, bundle, plans, messages, wait=bool(args.wait), submit=bool(args.submit))

    poll_s = float(os.environ.get(POLL_ENV) or 5.0)
    adapter = KaggleAdapter(timeout_s=float(args.timeout), poll_s=poll_s)
    data["credentials"] = require_credentials()
    data["dataset"].update(_push_dataset(adapter, bundle, ref, digest, notes))

    results: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempdirs.temporary("spectramind-kernels-") as staging:
        pushed: list[tuple[KernelPlan, PushedKernel]] = []
        for plan in plans:
            kernel = adapter.push_kernel(_stage(plan, staging))
            console.print(f"kernel {kernel.ref}: version {kernel.version} pushed ({kernel.url})")
            pushed.append((plan, kernel))
            results.append({"name": plan.name, **asdict(kernel), "changes": plan.changes})
    if args.wait or args.submit:
        out_root = bundle.parent / "kernel-output"
        for (plan, kernel), entry in zip(pushed, results, strict=True):
            entry.update(_await_kernel(adapter, kernel.ref, out_root / plan.name))
            if entry["status"] != "COMPLETE":
                failures.append(
                    f"kernel {kernel.ref} ended {entry['status']}: {entry['failure'] or 'no message'}"
                )
        if failures:  # a Result, not an exception: the JSON keeps the URLs, logs and outputs
            data["kernels"] = results
            return _failed(data, messages, "; ".join(failures), out_root)
        if args.submit:
            data["submissions"] = _submit(adapter, args, digest, pushed)
    data["kernels"] = results
    return _result(data, messages)


def _failed(data: dict[str, Any], messages: list[str], what: str, out_root: Path) -> Result:
    fix = "read the downloaded kernel log there, fix the cause and push again"
    data.update({"error": "KernelRunFailed", "what": redact(what), "where": str(out_root), "fix": fix})
    result = _result(data, [*messages, f"ERROR {what}", f"  where: {out_root}", f"  fix:   {fix}"])
    result.exit_code = EXIT_ERROR
    return result


def _push_dataset(adapter: KaggleAdapter, bundle: Path, ref: str, digest: str, notes: str) -> dict[str, Any]:
    remote = adapter.remote_dataset(ref)
    remote_hash = None
    if remote is not None:
        remote_hash = remote.bundle_sha256 or adapter.remote_manifest_sha256(ref)
    if remote is None:
        console.print(f"dataset {ref}: creating (first push)")
        url = adapter.create_dataset(bundle)
        action = "created"
    elif remote_hash == digest:
        console.print(
            f"dataset {ref}: version {remote.version} already carries bundle {digest[:12]}; skipped"
        )
        url, action = remote.url, "skipped"
    else:
        console.print(f"dataset {ref}: uploading a new version (remote has {remote_hash or 'no hash'})")
        url = adapter.version_dataset(bundle, notes)
        action = "versioned"
    adapter.wait_dataset_ready(ref, on_poll=lambda s: console.print(f"dataset {ref}: {s}"))
    return {"action": action, "url": url, "status": "ready"}


def _await_kernel(adapter: KaggleAdapter, ref: str, dest: Path) -> dict[str, Any]:
    outcome = adapter.wait_kernel(ref, on_poll=lambda s: console.print(f"kernel {ref}: {s}"))
    files = adapter.kernel_output(ref, dest)
    summary = next((f for f in files if f.name == SUMMARY_NAME), None)
    log = next((f for f in files if f.suffix == ".log"), None)
    return {
        "status": outcome.status,
        "failure": outcome.failure,
        "output_dir": str(dest),
        "files": sorted(f.relative_to(dest).as_posix() for f in files),  # weights/v50.pt keeps its folder
        "log": str(log) if log else None,
        "run_hash_summary": _show_summary(summary) if summary else None,
    }


def _submit(
    adapter: KaggleAdapter,
    args: argparse.Namespace,
    digest: str,
    pushed: list[tuple[KernelPlan, PushedKernel]],
) -> list[dict[str, str]]:
    from bundler.config import load

    competition = load([], args.config_dir).bundle.competition
    eligible = [
        (p, k)
        for p, k in pushed
        if competition in (p.meta.get("competition_sources") or []) and p.name != kernels.TRAIN_KERNEL
    ]
    if not eligible:
        raise UsageError(
            f"no pushed kernel has the competition {competition} in competition_sources",
            where="kernel-metadata.json",
            fix="add the competition to the predict kernel's competition_sources",
        )
    out = []
    for _, kernel in eligible:
        message = f"SpectraMind V50 bundle {digest[:12]} kernel v{kernel.version}"
        ref = adapter.submit(
            competition=competition, kernel=kernel, file_name=SUBMISSION_NAME, message=message
        )
        console.print(f"submitted {kernel.ref} v{kernel.version} to {competition}: {ref}")
        out.append({"kernel": kernel.ref, "competition": competition, "submission": ref})
    return out


def _dry_run(
    data: dict[str, Any],
    bundle: Path,
    plans: list[KernelPlan],
    messages: list[str],
    *,
    wait: bool,
    submit: bool,
) -> Result:
    data["dataset"].update(
        {
            "action": "create if absent, else version unless the remote carries this bundle hash",
            "dir_mode": "zip",
            "uploads": _upload_entries(bundle),
        }
    )
    data["kernels"] = [
        {"name": p.name, "ref": p.ref, "metadata": p.meta, "changes": p.changes} for p in plans
    ]
    data["wait"], data["submit"] = wait, submit
    messages = ["dry run: nothing was sent", *messages]
    result = _result(data, messages, title="push (dry run)")
    result.rows.insert(2, ("would upload", ", ".join(data["dataset"]["uploads"])))
    return result


def _result(data: dict[str, Any], messages: list[str], title: str = "push") -> Result:
    dataset = data["dataset"]
    rows = [
        ("bundle sha256", data["bundle_sha256"]),
        ("dataset", f"{dataset['ref']} ({dataset.get('action', '')})"),
        ("dataset url", str(dataset.get("url") or "-")),
        ("credentials", str(data["credentials"])),
    ]
    for kernel in data["kernels"]:
        status = kernel.get("status") or ("pushed" if kernel.get("url") else "planned")
        rows.append(
            (f"kernel {kernel['name']}", f"{kernel['ref']} {status} {kernel.get('url') or ''}".strip())
        )
        if kernel.get("log"):
            rows.append(("  log", str(kernel["log"])))
        summary = kernel.get("run_hash_summary")
        if summary:
            rows.append((f"  {SUMMARY_NAME}", str(kernel.get("output_dir") or "")))
            for key in sorted(summary):
                text = json.dumps(summary[key], sort_keys=True, default=str)
                rows.append((f"    {key}", text if len(text) <= 100 else text[:97] + "..."))
    for sub in data.get("submissions", []):
        rows.append(("submission", f"{sub['kernel']} -> {sub['competition']}: {sub['submission']}"))
    return Result("push", data=data, title=title, rows=rows, messages=messages)
