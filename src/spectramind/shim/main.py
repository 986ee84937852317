"""One boot: locate → verify → check target → activate (or install) → fallback → budgeted run → record.

``python -c '...shim.main...' BOOT_DIR [--bundle DIR] [--] [COMMAND...]`` (``boot/kaggle-boot.sh``
starts it; ``python -m spectramind.shim`` from a checkout):

1. locate the bundle (the one boot was started from, else the only one under ``$SPECTRAMIND_INPUT``;
   several attached, or not the one the kernel names in ``SPECTRAMIND_BUNDLE_SHA256``: exit 3);
2. copy the data's ``sample_submission.csv`` as the first valid submission (no bundle code involved);
3. check the bundle (`verify.check_bundle`: exit 3) and start hashing ``site/`` and ``weights/``
   beside the run (``boot.verify=overlap``, the default) or before it (``boot.verify=strict``);
4. check Python/ABI/platform against MANIFEST ``target`` (exit 1, naming both sides);
5. activate the installed delta in place (`activate`), or install ``wheels/`` (``bundle.install=wheels``);
6. the payload's fallback submission (``spectramind predict predict.mode=fallback``; none around a
   ``spectramind train``, which makes no submission), then COMMAND
   (default ``spectramind predict env=kaggle``) in its own process group under the budget (`budget`);
7. wait for full verification: a mismatch at any time kills the command, puts the step-2 submission
   back and exits 3, so no result of unverified code survives;
8. whatever happened: a valid submission if one can be had, ``run_hash_summary_v50.json`` and an
   appended ``v50_debug_log.md`` in the output dir.

Knobs: SPECTRAMIND_BOOT_START, SPECTRAMIND_BUDGET_S, SPECTRAMIND_SAFETY_MARGIN_S, SPECTRAMIND_GRACE_INT_S,
SPECTRAMIND_GRACE_TERM_S, SPECTRAMIND_VERIFY (overlap|strict; ``boot.verify=`` in the command wins),
SPECTRAMIND_FALLBACK=0, SPECTRAMIND_FALLBACK_TIMEOUT_S (300), SPECTRAMIND_INFO_TIMEOUT_S (60).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .activate import activate
from .base import (
    DEFAULT_COMMAND,
    DEFAULT_INPUT,
    DEFAULT_OUTPUT,
    DEGRADED_NAME,
    EXIT_BUDGET,
    EXIT_ERROR,
    EXIT_VERIFY,
    BootError,
    env_float,
    log,
)
from .budget import (
    DEFAULT_BUDGET_S,
    DEFAULT_MARGIN_S,
    Budget,
    RunOutcome,
    boot_start,
    killpg,
    load_budget,
    profile_name,
    read_flat_yaml,
    run_budgeted,
)
from .drift import describe, find_drift
from .locate import check_expected, locate_bundle
from .manifest import bundle_sha256, read_manifest
from .records import clear_records, determinism_env, environment_info, find_data_dir, write_boot_records
from .submit import Submissions, makes_submission
from .target import check_target
from .verify import Verifier, VerifyReport, check_bundle, verify_mode

_REASONS = {EXIT_VERIFY: "verification-failed", EXIT_BUDGET: "budget"}


class Boot:
    """One boot: each phase is a method; ``summary`` collects what the records need."""

    def __init__(self, command: list[str], bundle: Path | None, input_dir: Path, out: Path) -> None:
        start, self.start_problem = boot_start(time.time())
        self.command, self.input_dir, self.out, self.bundle_arg = command, input_dir, out, bundle
        self.bundle: Path | None = None
        self.profile_name = profile_name(command)
        self.profile: dict[str, str] = {}
        self.budget = Budget(start, DEFAULT_BUDGET_S, DEFAULT_MARGIN_S, 60.0, 30.0)
        self.timings: dict[str, float] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="spectramind-boot-"))
        self.subs = Submissions(out, self.workdir, self._sample, enabled=makes_submission(command))
        self.verifier: Verifier | None = None
        self.verification: dict[str, Any] = {}
        self.pgid: int | None = None
        self.command_started = False
        self.lock = threading.Lock()
        self.env: dict[str, str] = dict(os.environ)
        self.summary: dict[str, Any] = {
            "schema": 2,
            "command": command,
            "profile": self.profile_name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        }
        self.outcome = RunOutcome(code=EXIT_ERROR, reason="not-started")
        self.error: str | None = None

    def phase(self, name: str, started: float) -> None:
        self.timings[name] = round(time.time() - started, 4)

    def run(self) -> int:
        try:
            self._boot()
        except BootError as exc:
            self._fail(exc)
        finally:
            self._settle_verification()
            self._finish()
        return self.outcome.code

    def _fail(self, exc: BootError) -> None:
        log(exc.render())
        self.error, self.outcome.code = exc.what, exc.code
        self.outcome.reason = _REASONS.get(exc.code, "error")

    # --- the phases ----------------------------------------------------------------------------

    def _boot(self) -> None:
        t = time.time()
        self.phase("start", self.budget.start)  # kernel start (or this process) -> the shim running
        self.bundle = locate_bundle(self.input_dir, self.bundle_arg)
        self.profile = read_flat_yaml(self.bundle / "configs" / "env" / f"{self.profile_name}.yaml")
        self.out.mkdir(parents=True, exist_ok=True)
        self.subs.copy_sample()
        if self.start_problem:
            raise BootError(self.start_problem, where="environment", fix="unset SPECTRAMIND_BOOT_START")
        self.budget = load_budget(self.profile, self.budget.start, f"configs/env/{self.profile_name}.yaml")
        mode = verify_mode(self.command)
        log(
            f"bundle {self.bundle}; output {self.out}; budget {self.budget.budget_s:.0f} s "
            f"(margin {self.budget.margin_s:.0f} s), {self.budget.left():.0f} s left to the soft deadline"
        )
        manifest = self._verify(mode)
        self.phase("verify", t)
        t = time.time()
        self.summary["running"] = check_target(manifest)
        wheels = manifest.get("install") == "wheels"
        if wheels:  # the fallback mode: its installer code is imported only then
            from .install import install, parse_lock, plan_install

            lock = self.bundle / "requirements.lock"
            pins = parse_lock(lock.read_text(encoding="utf-8")) if lock.is_file() else []
            plan = plan_install(self.bundle, manifest, pins)
        self.phase("check", t)
        t = time.time()
        self.env = self._child_env()
        if wheels:
            self.summary["install"] = install(self.bundle, plan, self.workdir)
            self.phase("install", t)
        else:
            self.summary["activate"] = activate(self.bundle, manifest, self.workdir, self.env)
            self.phase("activate", t)
        self.summary["drift"] = find_drift(manifest)
        if self.summary["drift"]:
            log(
                f"image drift: {len(self.summary['drift'])} package(s) the bundle relies on differ from "
                f"the image it was locked against: {describe(self.summary['drift'])} (pin the kernel's "
                "image, or rebuild with bundle.self_contained=true)"
            )
        if self.subs.enabled and os.environ.get("SPECTRAMIND_FALLBACK", "1") != "0":
            t = time.time()
            self._fallback()
            self.phase("fallback", t)
        if self.budget.left() <= 0:
            raise BootError(
                "no time left for the command after boot",
                code=EXIT_BUDGET,
                where=f"budget {self.budget.budget_s} s, margin {self.budget.margin_s} s",
                fix="raise SPECTRAMIND_BUDGET_S, or start boot earlier in the kernel",
            )
        self.subs.keep_valid()
        clear_records(self.out)
        env = dict(self.env, SPECTRAMIND_BUDGET_S=f"{max(0.0, self.budget.left()):.3f}")
        log(f"running {' '.join(self.command)} ({self.budget.left():.1f} s to the soft deadline)")
        t = time.time()
        self.command_started = True
        self.outcome = run_budgeted(
            self._resolve(self.command),
            env,
            self.budget.soft,
            self.budget.grace_int_s,
            self.budget.grace_term_s,
            on_start=self._started,
        )
        self.phase("run", t)
        if self.outcome.reason == "budget":
            log(
                f"budget reached: sent {[s['signal'] for s in self.outcome.signals]}; "
                f"overshoot past the hard deadline {self.outcome.overshoot_s} s"
            )

    def _verify(self, mode: str) -> dict[str, Any]:
        """Check the bundle; start (overlap) or finish (strict) hashing its big files. Returns MANIFEST."""
        assert self.bundle is not None  # noqa: S101 -- located first
        t = time.perf_counter()
        try:
            manifest = read_manifest(self.bundle)
        except (OSError, ValueError):
            manifest = {}
        report = check_bundle(self.bundle, manifest or None)
        if manifest:  # what the MANIFEST claims, even when verification fails
            self._describe(manifest, report)
        self.verification = {"mode": mode, "check_s": round(time.perf_counter() - t, 4)}
        if not report.ok:
            raise BootError(
                "bundle verification failed: " + "; ".join(report.problems()[:20]),
                where=str(self.bundle),
                fix="re-download or rebuild the bundle (python -m bundler build), then verify it "
                "with `python -m bundler verify`",
                code=EXIT_VERIFY,
            )
        check_expected(manifest, self.bundle)
        self.verification.update(
            deferred_files=len(report.deferred), deferred_bytes=sum(int(e["size"]) for e in report.deferred)
        )
        self.verifier = Verifier(self.bundle, report.deferred, self._tampered)
        self.verifier.start(background=mode == "overlap")
        if mode == "strict" and self.verifier.modified:
            raise BootError(
                "bundle verification failed: modified: " + ", ".join(self.verifier.modified[:20]),
                where=str(self.bundle),
                fix="re-download or rebuild the bundle (python -m bundler build)",
                code=EXIT_VERIFY,
            )
        return manifest

    def _tampered(self, path: str) -> None:
        """From the verifier's thread: the first modified file. Nothing of the command may survive."""
        log(f"verification: {path} does not match MANIFEST.json: stopping everything from the bundle")
        with self.lock:
            if self.pgid is not None:
                killpg(self.pgid, signal.SIGKILL)

    def _started(self, pgid: int) -> None:
        with self.lock:
            self.pgid = pgid
            if self.verifier is not None and self.verifier.modified:
                killpg(pgid, signal.SIGKILL)

    def _settle_verification(self) -> None:
        """Wait for full verification (a result counts only once every file matched)."""
        if self.verifier is None:
            return
        t = time.perf_counter()
        ok = self.verifier.wait()
        start = self.budget.start
        done = self.verifier.finished_at
        self.verification.update(
            ok=ok,
            modified=self.verifier.modified,
            full_s=self.verifier.seconds,
            full_done_s=round(done - start, 4) if done else None,
            waited_s=round(time.perf_counter() - t, 4),
        )
        if not ok and self.outcome.reason != "verification-failed":
            self._fail(
                BootError(
                    "bundle verification failed beside the run: modified: "
                    + ", ".join(self.verifier.modified[:20]),
                    where=str(self.bundle),
                    fix="re-download or rebuild the bundle (python -m bundler build); the command's "
                    "results were discarded",
                    code=EXIT_VERIFY,
                )
            )

    def _describe(self, manifest: dict[str, Any], report: VerifyReport) -> None:
        configs = [e for e in manifest.get("files", []) if str(e.get("path", "")).startswith("configs/")]
        self.summary.update(
            bundle=str(self.bundle),
            bundle_sha256=report.bundle_sha256,
            bundle_files=report.files,
            bundle_bytes=report.bytes,
            git_commit=manifest.get("git_commit"),
            lock_sha256=manifest.get("lock_sha256"),
            config_sha256=bundle_sha256(configs),
            image=manifest.get("image"),
            target=manifest.get("target"),
            pyc=manifest.get("pyc"),
        )

    def _child_env(self) -> dict[str, str]:
        assert self.bundle is not None  # noqa: S101 -- located first
        env = dict(os.environ)
        scripts = sysconfig.get_paths()["scripts"]
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
        env.update(
            SPECTRAMIND_CONFIG_DIR=str(self.bundle / "configs"),
            SPECTRAMIND_BUNDLE=str(self.bundle),
            SPECTRAMIND_OUTPUT=str(self.out),
            SPECTRAMIND_INPUT=str(self.input_dir),
            SPECTRAMIND_DEADLINE=f"{self.budget.soft:.3f}",
            SPECTRAMIND_BOOT_START=f"{self.budget.start:.3f}",
        )
        data = find_data_dir(self.input_dir, self.profile)
        if data is not None:
            env["SPECTRAMIND_DATA"] = str(data)
        return env

    @staticmethod
    def _resolve(command: list[str]) -> list[str]:
        """``spectramind`` and ``python`` run with this very interpreter (the one the delta is for)."""
        if command and command[0] == "spectramind":
            return [sys.executable, "-m", "spectramind.cli", *command[1:]]
        if command and command[0] in {"python", "python3"}:
            return [sys.executable, *command[1:]]
        return command

    def _fallback(self) -> None:
        """The payload's cheapest valid prediction, before the real command; the sample stays otherwise."""
        limit = env_float("SPECTRAMIND_FALLBACK_TIMEOUT_S", 300.0)
        overrides = [a for a in self.command if re.match(r"^\+{0,2}env=", a)]
        cmd = [sys.executable, "-m", "spectramind.cli", "predict", "predict.mode=fallback", *overrides]
        deadline = min(self.budget.soft, time.time() + limit)
        env = dict(self.env, SPECTRAMIND_DEADLINE=f"{deadline:.3f}")
        outcome = run_budgeted(cmd, env, deadline, 2.0, 1.0, on_start=self._started)
        problem = self.subs.problem()
        if outcome.code == 0 and problem is None:
            self.subs.remember("fallback")
            log("fallback submission written")
            return
        log(f"fallback prediction did not give a valid submission (exit {outcome.code}, {problem})")
        self.subs.back_to_trusted()

    def _sample(self) -> Path | None:
        data = find_data_dir(self.input_dir, self.profile)
        sample = data / "sample_submission.csv" if data else None
        return sample if sample is not None and sample.is_file() else None

    # --- records -------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Whatever happened: a valid submission if one can be had, then the records."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            source = self.subs.final(reason=self.outcome.reason, command_started=self.command_started)
        except OSError as exc:
            log(f"cannot write to the output dir {self.out}: {exc}")
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        final = self.subs.problem()
        degraded = self.out / DEGRADED_NAME
        if self.outcome.reason == "completed" and degraded.is_file():  # e.g. predicted without weights
            self.outcome.reason = "degraded"
            self.summary["degraded"] = degraded.read_text(encoding="utf-8", errors="replace").strip()[:2000]
            log(f"the command completed degraded: {self.summary['degraded']}")
        self.summary.update(
            environment_info(self.profile, env_float("SPECTRAMIND_INFO_TIMEOUT_S", 60.0), self.env)
        )
        ended = time.time()
        self.timings["total"] = round(ended - self.budget.start, 4)
        self.summary.update(
            profile_settings={k: self.profile.get(k) for k in ("name", "seed", "deterministic", "threads")},
            seeds={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"), "seed": self.profile.get("seed")},
            determinism_env=determinism_env(),
            timings_s=self.timings,
            verification=self.verification,
            budget=self.budget.record(ended),
            exit=self.outcome.record(self.error),
            submission={
                "path": str(self.subs.target),
                "valid": final is None,
                "problem": final,
                "source": source if final is None else "none",
            },
        )
        try:
            write_boot_records(self.out, self.summary)
        except OSError as exc:
            log(f"cannot write the run records to {self.out}: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        log(
            f"exit {self.outcome.code} ({self.outcome.reason}); submission "
            f"{'valid' if final is None else final}; records in {self.out}"
        )


def main(argv: list[str] | None = None) -> int:
    """``[--bundle DIR] [--] [COMMAND...]`` (kaggle-boot.sh passes the bundle it found)."""
    args = list(sys.argv[1:] if argv is None else argv)
    bundle: Path | None = None
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--":
            break
        if flag == "--bundle" and args:
            bundle = Path(args.pop(0)).resolve()
        else:
            print(f"usage: shim [--bundle DIR] [--] [COMMAND...] (unknown option {flag})", file=sys.stderr)
            return 2
    input_dir = Path(os.environ.get("SPECTRAMIND_INPUT", DEFAULT_INPUT))
    out = Path(os.environ.get("SPECTRAMIND_OUTPUT", DEFAULT_OUTPUT))
    return Boot(args or list(DEFAULT_COMMAND), bundle, input_dir, out).run()
