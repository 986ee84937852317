"""``python -m bundler parity``: the same small dataset through each profile, submissions compared.

Steps: a small synthetic dataset (``make-data``, deterministic) -> the weights (DVC, else train) ->
for each profile, ``spectramind test`` then the payload (``spectramind predict``): ``default``,
``ci`` and ``docker`` as processes here with the profile's settings (data and output folders through
``SPECTRAMIND_DATA``/``SPECTRAMIND_OUTPUT``), ``kaggle`` as a built bundle booted offline in the
sandbox -> every submission compared byte for byte with the first one. A mismatch exits 1 and
names the first differing cell. ``--submission NAME=PATH`` adds a submission made elsewhere (the
nightly workflow's docker container) to the comparison; ``--profiles none`` only compares those.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bundler import parity, tempdirs
from bundler.config import load
from bundler.errors import EXIT_ERROR, UsageError
from bundler.output import Result
from bundler.pack import sha256_bytes
from bundler.steps import Steps, ensure_weights

PROFILES = ("default", "ci", "docker", "kaggle")
_MARKER = ".spectramind-parity"  # marks an --out folder parity may empty before a run
# Small enough for a nightly job, with every kind of planet (a second visit: every 2nd planet).
_DATA = ["data.n_train=2", "data.n_test=3", "data.multi_visit_every=2", "data.seed=11"]


def _profiles(text: str) -> list[str]:
    """The profiles to run, in order; ``none`` runs none (only ``--submission`` files are compared)."""
    names = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in names if p not in PROFILES]
    if unknown:
        raise UsageError(
            f"unknown profile(s) {', '.join(unknown)}",
            where=f"--profiles {text}",
            fix=f"choose from {','.join(PROFILES)}, or none",
        )
    return list(dict.fromkeys(names))


def _external(specs: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(
                f"--submission {spec!r} is not NAME=PATH",
                where="--submission",
                fix="e.g. --submission docker=outputs/parity-docker/submission.csv",
            )
        out[name] = Path(path).resolve()
    return out


def _local(steps: Steps, profile: str, data: Path, out: Path) -> Path:
    env = {"SPECTRAMIND_DATA": str(data), "SPECTRAMIND_OUTPUT": str(out / profile)}
    report = steps.step(
        f"{profile}: test", ["spectramind.cli", "test", "--json", f"env={profile}"], want_json=True, env=env
    )
    if not report.get("ok"):
        raise UsageError(
            f"spectramind test failed on the {profile} profile: {', '.join(report.get('failed') or [])}",
            where=f"env={profile}",
            fix=f"run `spectramind test env={profile}` and fix what it reports",
        )
    steps.step(f"{profile}: predict", ["spectramind.cli", "predict", f"env={profile}"], env=env)
    return out / profile / "submission.csv"


def _kaggle(steps: Steps, data: Path, out: Path, budget: float) -> Path:
    build = steps.step(
        "kaggle: build", ["bundler", "build", "--json", "--out", str(out / "bundle")], want_json=True
    )
    bundle = str(build["bundle"])
    common = ["--data", str(data), "--budget", f"{budget:g}", "--json"]
    test = steps.step(
        "kaggle: test (sandbox)",
        ["bundler", "simulate", bundle, *common, "--out", str(out / "kaggle-test"),
         "--command", "spectramind test env=kaggle"],
        want_json=True,
    )  # fmt: skip
    if test.get("exit_code") != 0:
        raise UsageError(
            f"spectramind test failed in the sandbox (exit {test.get('exit_code')})",
            where=str(out / "kaggle-test"),
            fix="read the boot log there; `python -m bundler simulate BUNDLE --command 'spectramind test'`",
        )
    sim = steps.step(
        "kaggle: predict (sandbox)",
        ["bundler", "simulate", bundle, *common, "--out", str(out / "kaggle")],
        want_json=True,
    )
    if sim.get("reason") != "completed":
        raise UsageError(
            f"the payload ended {sim.get('reason')} in the sandbox: its submission is a fallback",
            where=str(out / "kaggle"),
            fix="read v50_debug_log.md there; raise --budget if it ran out of time",
        )
    return Path(sim["submission"]["path"])


def run(args: argparse.Namespace) -> Result:
    profiles = _profiles(args.profiles)
    external = _external(list(args.submission or []))
    if len(profiles) + len(external) < 2:
        raise UsageError(
            "parity needs at least two submissions to compare",
            where=f"--profiles {args.profiles} and {len(external)} --submission",
            fix="name two or more profiles, or add --submission NAME=PATH",
        )
    overrides = list(args.overrides)
    settings = load(overrides, args.config_dir)
    if not profiles:  # compare submissions made elsewhere (the nightly workflow's jobs)
        return _compare(external, {}, {})
    out = Path(args.out).resolve() if args.out else settings.root / "outputs" / "parity"
    tempdirs.fresh_out(out, "parity", _MARKER)
    steps = Steps(settings, overrides, job="parity")
    data = out / "data"
    steps.step(
        "make-data",
        ["spectramind.cli", "make-data", *_DATA],
        env={"SPECTRAMIND_DATA": str(data), "SPECTRAMIND_OUTPUT": str(out / "make-data")},
    )
    weights = ensure_weights(steps)

    submissions: dict[str, Path] = {}
    for profile in profiles:
        if profile == "kaggle":
            submissions[profile] = _kaggle(steps, data, out, float(args.budget))
        else:
            submissions[profile] = _local(steps, profile, data, out)
    submissions.update(external)
    return _compare(submissions, {"out": str(out), "data": str(data), "weights": weights}, steps.timings)


def _compare(submissions: dict[str, Path], data: dict[str, Any], timings: dict[str, float]) -> Result:
    (reference_name, reference_path), *others = submissions.items()
    reference = parity.read_submission(reference_path, reference_name)
    digest = sha256_bytes(reference)
    table: dict[str, Any] = {reference_name: {"path": str(reference_path), "sha256": digest, "matches": True}}
    rows = [(reference_name, f"{digest[:16]}…  reference  {reference_path}")]
    mismatches = []
    for name, path in others:
        body = parity.read_submission(path, name)
        digest, diff = sha256_bytes(body), parity.first_difference(reference, body)
        table[name] = {"path": str(path), "sha256": digest, "matches": diff is None}
        if diff is None:
            rows.append((name, f"{digest[:16]}…  identical  {path}"))
            continue
        table[name]["first_difference"] = diff.to_json()
        rows.append((name, f"{digest[:16]}…  DIFFERS: {diff.describe()}"))
        mismatches.append(f"{name} differs from {reference_name} at {diff.describe()}")
    result = Result(
        "parity",
        data={**data, "reference": reference_name, "submissions": table, "timings_s": timings},
        title="parity: submissions byte for byte",
        rows=rows,
    )
    if mismatches:
        fix = "compare the two profiles' settings (threads, determinism, versions) and their run records"
        result.data.update({"error": "ParityMismatch", "what": "; ".join(mismatches), "fix": fix})
        result.messages = [f"ERROR {m}" for m in mismatches] + [f"  fix:   {fix}"]
        result.exit_code = EXIT_ERROR
    return result
