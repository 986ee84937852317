"""``python -m bundler simulate BUNDLE_DIR``: boot a bundle offline in the local Kaggle sandbox (DESIGN §7).

Steps: read the bundle's MANIFEST → recreate (or reuse) the image packages it relies on → a thin
per-run venv → ``unshare -n -m`` with the bundle read-only at ``/kaggle/input/<slug>``, the data at
``/kaggle/input/ariel-data-challenge-2025`` and ``--out`` as ``/kaggle/working`` → boot → outcome.
``--command "spectramind train env=kaggle"`` runs what the training kernel runs: the outcome then
reports the weights it left in ``--out`` (at ``model.weights``) instead of a submission.

Knobs for tests and unusual machines: ``SPECTRAMIND_SIM_CACHE`` (image venv cache),
``SPECTRAMIND_SIM_IMAGE`` (an image manifest file instead of configs/images/<MANIFEST image>.json),
``SPECTRAMIND_SIM_FIND_LINKS`` (extra wheel folders, ``os.pathsep``-separated; /opt/wheels is used when
present), ``SPECTRAMIND_SIM_INDEX_URL`` (``none`` = no index; default ``bundle.index_url``).
The boot knobs (``SPECTRAMIND_SAFETY_MARGIN_S``, ``SPECTRAMIND_GRACE_*_S``, ...) pass through.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bundler import sandbox, tempdirs
from bundler.config import Settings, load
from bundler.errors import EXIT_BUDGET, EXIT_OK, BundlerError, UsageError, VerificationError
from bundler.image import ImageManifest, load_image, load_image_file
from bundler.imagepackages import sandbox_inputs
from bundler.output import Result, console
from spectramind.shim import MANIFEST_NAME, SUBMISSION_NAME, SUMMARY_NAME, read_manifest, submission_problem
from spectramind.shim.manifest import file_sha256
from spectramind.shim.submit import makes_submission

_MARKER = ".spectramind-sim"  # marks an --out folder the sandbox may empty before a run
_PASS_THROUGH = (
    "SPECTRAMIND_SAFETY_MARGIN_S",
    "SPECTRAMIND_GRACE_INT_S",
    "SPECTRAMIND_GRACE_TERM_S",
    "SPECTRAMIND_FALLBACK",
    "SPECTRAMIND_FALLBACK_TIMEOUT_S",
    "SPECTRAMIND_INFO_TIMEOUT_S",
    "SPECTRAMIND_THREADS",
    "SPECTRAMIND_SEED",
    "SPECTRAMIND_PROFILE",
)


def _image_for(settings: Settings, manifest: dict[str, Any]) -> ImageManifest:
    image = manifest.get("image") or {}
    name = str(image.get("name") or settings.target.image)
    loaded = load_image(settings.config_dir, name)
    if image.get("sha256") and image["sha256"] != loaded.sha256:
        console.print(f"warning: image manifest {name} differs from the one the bundle was built against")
    return loaded


def _slug(settings: Settings, bundle: Path) -> str:
    meta = bundle / "dataset-metadata.json"
    try:
        return str(json.loads(meta.read_text(encoding="utf-8"))["id"]).split("/")[-1]
    except (OSError, ValueError, KeyError):
        return settings.bundle.dataset.split("/")[-1]


def _data_dir(args: argparse.Namespace, settings: Settings) -> Path | None:
    if args.data:
        data = Path(args.data).resolve()
        if not data.is_dir():
            raise UsageError(
                "--data is not a folder", where=str(data), fix="point --data at competition data"
            )
        return data
    root = settings.cfg.get("data", {}).get("root")
    candidate = settings.path(str(root)) if root else None
    return candidate if candidate is not None and candidate.is_dir() else None


def run(args: argparse.Namespace) -> Result:
    bundle = Path(args.bundle_dir).resolve()
    if not (bundle / MANIFEST_NAME).is_file() or not (bundle / "boot" / "kaggle-boot.sh").is_file():
        raise UsageError(
            "not a bundle (no MANIFEST.json or boot/kaggle-boot.sh)",
            where=str(bundle),
            fix="build one with `python -m bundler build` and pass its folder",
        )
    reason = sandbox.unavailable()
    if reason is not None:
        raise UsageError(
            f"the Kaggle sandbox cannot run here: {reason}",
            where="unshare --net --mount",
            fix="run as root (or enable user namespaces), e.g. in the CI container or with sudo",
        )
    settings = load(list(args.overrides or []), args.config_dir)
    try:
        manifest = read_manifest(bundle)
    except ValueError as exc:
        raise VerificationError(f"MANIFEST.json is unreadable: {exc}", where=str(bundle)) from exc
    image_file = os.environ.get("SPECTRAMIND_SIM_IMAGE")
    image = load_image_file(Path(image_file)) if image_file else _image_for(settings, manifest)
    skipped = [str(s["name"]) for s in manifest.get("skipped") or []]
    packages = sandbox.image_packages(image, skipped)
    cache = Path(
        os.environ.get("SPECTRAMIND_SIM_CACHE") or settings.path(settings.bundle.cache_dir) / "sim-envs"
    )
    links = [Path(p) for p in os.environ.get("SPECTRAMIND_SIM_FIND_LINKS", "").split(os.pathsep) if p]
    links += [Path("/opt/wheels")] if Path("/opt/wheels").is_dir() else []
    index = os.environ.get("SPECTRAMIND_SIM_INDEX_URL", settings.bundle.index_url)
    command = shlex.split(args.run_command) if args.run_command else []
    payload = not command or command[:2] in (["spectramind", "predict"], ["spectramind", "train"])
    packages, python = sandbox_inputs(image, packages, links, payload=payload)
    console.print(f"sandbox: image {image.name}, {len(packages)} package(s) the bundle relies on")
    with console.status(f"image environment for {image.name} (built once, then cached)"):
        base = sandbox.image_env(
            image,
            packages,
            cache.expanduser(),
            find_links=links,
            index_url=None if index == "none" else index,
            python=str(python),
        )
    out = Path(args.out).resolve() if args.out else settings.root / "outputs" / "simulate"
    tempdirs.fresh_out(out, "simulate", _MARKER)  # /kaggle/working starts empty
    data = _data_dir(args, settings)
    budget = float(args.budget) if args.budget is not None else float(settings.env.budget_s)
    with tempdirs.temporary("spectramind-sim-") as tmp:  # a killed run's is removed by the next
        run_dir = tmp / "env"
        sandbox.run_env(base, run_dir)
        argv = sandbox.sandbox_argv(
            root=tmp / "root",
            slug=_slug(settings, bundle),
            bundle=bundle,
            out=out,
            data=data,
            base=base,
            run_env_dir=run_dir,
            command=command,
        )
        env = {k: v for k, v in os.environ.items() if k in _PASS_THROUGH}
        env.update(
            PATH=os.environ.get("PATH", "/usr/bin:/bin"),
            HOME=str(tmp / "home"),
            LANG="C.UTF-8",
            SPECTRAMIND_BUDGET_S=f"{budget:g}",
            TMPDIR=str(tmp),
        )
        (tmp / "home").mkdir()
        code, seconds, killed = _boot(argv, env, limit=budget + 120.0)
    weights = out / str(settings.cfg.get("model", {}).get("weights") or "")
    trains = not makes_submission(command or ["spectramind", "predict"])
    return _result(
        bundle=bundle,
        out=out,
        data=data,
        base=base,
        code=code,
        seconds=seconds,
        killed=killed,
        budget=budget,
        weights=weights if trains else None,
    )


def _boot(argv: list[str], env: dict[str, str], *, limit: float) -> tuple[int, float, bool]:
    """Run the sandbox; a boot that outlives its own budget by ``limit`` is killed (exit 124)."""
    started = time.monotonic()
    # Everything the boot prints is progress: stdout stays free for --json.
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=sys.stderr.fileno())
    try:
        code = proc.wait(timeout=limit)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code, killed = proc.wait(), True
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return (EXIT_BUDGET if killed else code), round(time.monotonic() - started, 3), killed


def _weights(path: Path) -> dict[str, Any] | None:
    """A training run's weights in the working dir (where a Kaggle kernel leaves them), or None."""
    if not path.is_file():
        return None
    return {"path": str(path), "sha256": file_sha256(path), "size": path.stat().st_size}


def _weights_note(path: Path) -> str:
    found = _weights(path)
    return f"sha256 {found['sha256']}" if found else "none written"


def _result(
    *,
    bundle: Path,
    out: Path,
    data: Path | None,
    base: sandbox.ImageEnv,
    code: int,
    seconds: float,
    killed: bool,
    budget: float,
    weights: Path | None,
) -> Result:
    summary: dict[str, Any] = {}
    if (out / SUMMARY_NAME).is_file():
        summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    submission = out / SUBMISSION_NAME
    problem = submission_problem(submission)
    exit_ = summary.get("exit") or {}
    data_out = {
        "bundle": str(bundle),
        "out": str(out),
        "data": str(data) if data else None,
        "exit_code": code,
        "reason": "sandbox-killed" if killed else exit_.get("reason"),
        "seconds": seconds,
        "budget_s": budget,
        "submission": None
        if weights
        else {"path": str(submission), "valid": problem is None, "problem": problem},
        "weights": _weights(weights) if weights else None,
        "summary": str(out / SUMMARY_NAME) if summary else None,
        "debug_log": str(out / "v50_debug_log.md") if (out / "v50_debug_log.md").is_file() else None,
        "image_env": {
            "path": str(base.path),
            "cached": base.cached,
            "seconds": base.seconds,
            "packages": len(base.packages),
        },
        "timings_s": summary.get("timings_s"),
        "signals": exit_.get("signals"),
        "overshoot_s": exit_.get("overshoot_s"),
        "error": exit_.get("error"),
    }
    rows = [
        ("exit", f"{code} ({data_out['reason']})"),
        ("time", f"{seconds} s of {budget:g} s"),
        ("weights", f"{weights} ({_weights_note(weights)})")
        if weights
        else ("submission", f"{submission} ({'valid' if problem is None else problem})"),
        ("records", f"{out / SUMMARY_NAME}, {out / 'v50_debug_log.md'}"),
        ("image env", f"{base.path} ({'cached' if base.cached else f'built in {base.seconds} s'})"),
    ]
    if exit_.get("error"):
        rows.append(("error", str(exit_["error"])))
    result = Result("simulate", data=data_out, title="Kaggle sandbox run", rows=rows, exit_code=code)
    if code not in {EXIT_OK} and not summary:
        raise BundlerError(
            f"the sandbox boot failed (exit {code}) before it wrote its records",
            where=str(out),
            fix="read the boot output above",
        )
    return result
