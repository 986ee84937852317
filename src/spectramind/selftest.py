"""``spectramind test [--json] [OVERRIDES...]``: is this environment fit to run the payload?

Checks Python and platform against the target, CUDA and GPUs (pynvml; "no GPU" is a clean result
unless the profile requires CUDA), the input/output mounts and write access, bundle integrity, and
the installed packages against the lock. A rich table on stderr (plain text if rich is missing),
one JSON object on stdout with ``--json``; exit 1 when any check fails.

The target comes from the bundle's MANIFEST.json when running from a bundle ($SPECTRAMIND_BUNDLE,
or one found under $SPECTRAMIND_INPUT), else from the composed config (``target=`` override).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spectramind.shim.base import DEFAULT_INPUT, DEFAULT_OUTPUT, BootError, version_satisfies
from spectramind.shim.drift import installed
from spectramind.shim.install import parse_lock
from spectramind.shim.locate import locate_bundle
from spectramind.shim.manifest import MANIFEST_NAME, read_manifest
from spectramind.shim.target import check_target
from spectramind.shim.verify import verify_bundle

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | fail | skip
    detail: str


@dataclass
class Context:
    target: dict[str, Any]
    target_source: str
    bundle: Path | None
    input_dir: Path
    output_dir: Path
    profile: str
    cuda_required: bool


def _context(overrides: list[str]) -> Context:
    input_dir = Path(os.environ.get("SPECTRAMIND_INPUT", DEFAULT_INPUT))
    bundle: Path | None = None
    if os.environ.get("SPECTRAMIND_BUNDLE"):
        bundle = Path(os.environ["SPECTRAMIND_BUNDLE"])
    else:
        try:
            bundle = locate_bundle(input_dir)
        except BootError:
            bundle = None
    env: dict[str, Any] = {}
    target: dict[str, Any] = {}
    source = "none"
    try:
        from spectramind.config import compose, env_profile, target_profile

        cfg = compose(overrides)
        env = asdict(env_profile(cfg))
        tp = target_profile(cfg)
        target, source = (
            {"python": tp.python, "abi": tp.abi, "platforms": list(tp.platforms)},
            f"target={tp.name}",
        )
    except Exception as exc:  # a broken config is reported, not fatal: the other checks still run
        source = f"config unavailable ({type(exc).__name__})"
    if bundle is not None and (bundle / MANIFEST_NAME).is_file():
        with contextlib.suppress(ValueError):
            target, source = dict(read_manifest(bundle).get("target") or {}), f"{bundle}/MANIFEST.json"
    output = os.environ.get("SPECTRAMIND_OUTPUT") or str(env.get("output_dir") or DEFAULT_OUTPUT)
    if not os.environ.get("SPECTRAMIND_INPUT") and env.get("input_dir"):
        input_dir = Path(str(env["input_dir"]))
    return Context(
        target=target,
        target_source=source,
        bundle=bundle,
        input_dir=input_dir,
        output_dir=Path(output),
        profile=str(env.get("name", "?")),
        cuda_required=bool(env.get("cuda_required", False)),
    )


def check_python(ctx: Context) -> list[Check]:
    try:
        running = check_target({"target": ctx.target})
    except BootError as exc:
        return [Check("python/platform", FAIL, f"{exc.what} ({ctx.target_source})")]
    if not ctx.target:
        return [Check("python/platform", SKIP, f"no target known ({ctx.target_source})")]
    return [
        Check(
            "python",
            OK,
            f"{running['python']} {running['abi']} matches {ctx.target.get('python')} ({ctx.target_source})",
        ),
        Check("platform", OK, f"{running['machine']} glibc {running['glibc']} accepts the target's tags"),
    ]


def check_gpu(ctx: Context) -> list[Check]:
    """CUDA through torch (when installed) and GPUs through NVML (when present)."""
    checks: list[Check] = []
    gpus: list[str] = []
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(handle)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
                gpus.append(f"{name.decode() if isinstance(name, bytes) else name} ({mem:.0f} GiB)")
            driver = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        checks.append(Check("gpu", OK, f"{len(gpus)} GPU(s): {', '.join(gpus)}; driver {driver!s}"))
    except Exception as exc:  # NVML raises its own types (or ImportError without pynvml)
        status = FAIL if ctx.cuda_required else OK
        checks.append(Check("gpu", status, f"no GPU ({type(exc).__name__}: {str(exc)[:80]})"))
    try:
        import torch

        if torch.cuda.is_available():
            checks.append(
                Check(
                    "cuda",
                    OK,
                    f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
                    f"{torch.cuda.device_count()} device(s)",
                )
            )
        else:
            status = FAIL if ctx.cuda_required or gpus else OK
            checks.append(
                Check(
                    "cuda",
                    status,
                    f"torch {torch.__version__}: CUDA not available"
                    + (" although NVML sees GPUs" if gpus else " (CPU run)"),
                )
            )
    except ImportError:
        checks.append(Check("cuda", SKIP, "torch is not installed"))
    return checks


def check_mounts(ctx: Context) -> list[Check]:
    checks: list[Check] = []
    if ctx.input_dir.is_dir() and os.access(ctx.input_dir, os.R_OK | os.X_OK):
        entries = sorted(p.name for p in ctx.input_dir.iterdir())
        checks.append(Check("input", OK, f"{ctx.input_dir}: {len(entries)} entr(y/ies) {entries[:5]}"))
    else:
        status = FAIL if ctx.profile == "kaggle" else SKIP
        checks.append(Check("input", status, f"{ctx.input_dir} is not a readable folder"))
    if not ctx.output_dir.is_dir():  # a check never creates what it checks (no /kaggle on a laptop)
        checks.append(_missing_output(ctx))
        return checks
    try:
        with tempfile.NamedTemporaryFile(dir=ctx.output_dir, prefix=".selftest-") as fh:
            fh.write(b"ok")
        checks.append(Check("output", OK, f"{ctx.output_dir} is writable"))
    except OSError as exc:
        checks.append(Check("output", FAIL, f"{ctx.output_dir} is not writable: {exc.strerror}"))
    return checks


def _missing_output(ctx: Context) -> Check:
    """An output folder that does not exist yet: can the run create it? (Kaggle always mounts it.)"""
    missing = f"{ctx.output_dir} does not exist (the test creates nothing)"
    if ctx.profile == "kaggle":
        return Check("output", FAIL, missing)
    parent = next(p for p in ctx.output_dir.absolute().parents if p.exists())
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("output", OK, f"{missing}; a run can create it under {parent}")
    return Check("output", FAIL, f"{missing} and cannot be created: {parent} is not a writable folder")


def check_bundle(ctx: Context) -> list[Check]:
    if ctx.bundle is None:
        return [Check("bundle", SKIP, "not running from a bundle"), Check("packages", SKIP, "no lock")]
    report = verify_bundle(ctx.bundle)
    problems = [
        *report.errors,
        *(f"modified {p}" for p in report.modified),
        *(f"missing {p}" for p in report.missing),
        *(f"extra {p}" for p in report.extra),
    ]
    checks = [
        Check(
            "bundle",
            OK if report.ok else FAIL,
            f"{report.files} files, {report.bytes / 2**20:.1f} MiB verified"
            if report.ok
            else "; ".join(problems[:6]),
        )
    ]
    lock = ctx.bundle / "requirements.lock"
    if not lock.is_file():
        return [*checks, Check("packages", SKIP, "the bundle has no requirements.lock")]
    try:
        pins = parse_lock(lock.read_text(encoding="utf-8"))
    except BootError as exc:
        return [*checks, Check("packages", FAIL, exc.what)]
    have = installed()
    wrong = [
        f"{p.name}=={p.version} (have {have.get(p.key, 'none')})"
        for p in pins
        if p.marker == "" and not (p.key in have and version_satisfies(have[p.key], p.version))
    ]
    detail = f"{len(pins) - len(wrong)}/{len(pins)} locked packages installed"
    return [
        *checks,
        Check("packages", FAIL if wrong else OK, detail + (": " + ", ".join(wrong[:8]) if wrong else "")),
    ]


def run_checks(overrides: list[str]) -> tuple[Context, list[Check]]:
    ctx = _context(overrides)
    return ctx, [*check_python(ctx), *check_gpu(ctx), *check_mounts(ctx), *check_bundle(ctx)]


def _render(checks: list[Check]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        for c in checks:
            print(f"{c.status.upper():5} {c.name:16} {c.detail}", file=sys.stderr)
        return
    table = Table(title="spectramind self-test")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    style = {OK: "green", FAIL: "bold red", SKIP: "yellow"}
    for c in checks:
        table.add_row(c.name, Text(c.status, style=style[c.status]), Text(c.detail))
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # a log: no wrapping, so paths stay whole
        console.width = 10_000
    console.print(table)


def main(argv: list[str]) -> int:
    from spectramind.cli import command_parser
    from spectramind.runtime import print_json

    args = command_parser("test").parse_intermixed_args(argv)
    as_json, overrides = bool(args.json), list(args.overrides)
    ctx, checks = run_checks(overrides)
    failed = [c.name for c in checks if c.status == FAIL]
    if as_json:
        payload = {
            "ok": not failed,
            "failed": failed,
            "target_source": ctx.target_source,
            "checks": [asdict(c) for c in checks],
        }
        print_json(payload)
    _render(checks)
    return 1 if failed else 0
