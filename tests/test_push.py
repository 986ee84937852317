"""``python -m bundler push`` against the loopback Kaggle server, through the real kaggle client.

Each test runs the CLI as a subprocess (the client reads its routing at import time), with HOME and
TMPDIR in tmp_path so no real credentials or resumable-upload state leak in or out.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from spectramind.shim.manifest import MANIFEST_NAME, file_entries, seal
from tests.kaggle_server import KEY, TOKEN, USERNAME, KaggleServer

REF = f"{USERNAME}/spectramind-v50-bundle"
KERNEL = f"{USERNAME}/spectramind-v50-predict"
COMPETITION = "ariel-data-challenge-2025"


def make_bundle(root: Path, *, payload: str = "v1", extra: dict[str, str] | None = None) -> tuple[Path, str]:
    """A tiny bundle laid out as DESIGN §5 says, with a real MANIFEST.json."""
    bundle = root / "dist" / "bundle"
    (bundle / "boot").mkdir(parents=True)
    (bundle / "wheels").mkdir()
    (bundle / "dataset-metadata.json").write_text(
        json.dumps({"title": "SpectraMind V50 bundle", "id": REF, "licenses": [{"name": "CC0-1.0"}]})
    )
    (bundle / "requirements.lock").write_text(f"# lock {payload}\n")
    (bundle / "boot" / "shim.py").write_text("print('boot')\n")
    (bundle / "wheels" / "demo-0.1-py3-none-any.whl").write_bytes(payload.encode() * 10)
    for rel, text in (extra or {}).items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text(text)
    manifest = seal({"git_commit": "abc123", "files": file_entries(bundle)})
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return bundle, manifest["bundle_sha256"]


def make_kernel(root: Path, *, internet: bool = True) -> Path:
    folder = root / "dist" / "kernels" / "predict"
    folder.mkdir(parents=True)
    meta = {
        "id": KERNEL,
        "title": "SpectraMind V50 Predict",
        "code_file": "run.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": False,
        "enable_internet": internet,
        "dataset_sources": [],
        "competition_sources": [COMPETITION],
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    (folder / "run.py").write_text("import subprocess\nsubprocess.run(['bash', 'boot/kaggle-boot.sh'])\n")
    return folder


def push_env(tmp_path: Path, server: KaggleServer | None, creds: str = "token") -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update({"HOME": str(home), "TMPDIR": str(tmp_path / "tmp"), "SPECTRAMIND_KAGGLE_POLL_S": "0.05"})
    env["COLUMNS"] = "250"  # rich would wrap hashes at 80 columns without a terminal
    env.pop("XDG_CONFIG_HOME", None)
    if server is not None:
        env.update(server.client_env())
    if creds == "token":
        env["KAGGLE_API_TOKEN"] = TOKEN
    elif creds == "key":
        env["KAGGLE_USERNAME"], env["KAGGLE_KEY"] = USERNAME, KEY
    elif creds == "json":
        (home / ".kaggle").mkdir(exist_ok=True)
        (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": USERNAME, "key": KEY}))
        (home / ".kaggle" / "kaggle.json").chmod(0o600)
    return env


def push(
    repo: Path, tmp_path: Path, bundle: Path, server: KaggleServer | None, *extra: str, creds: str = "token"
) -> tuple[int, dict[str, Any], str]:
    """Run the CLI with --json; returns (exit code, the JSON object on stdout, stderr)."""
    proc = run_cli(repo, tmp_path, bundle, server, "--json", *extra, creds=creds)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stdout is not one JSON object:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.returncode, data, proc.stderr


def run_cli(
    repo: Path, tmp_path: Path, bundle: Path, server: KaggleServer | None, *extra: str, creds: str = "token"
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bundler", "push", str(bundle), "--timeout", "60", *extra]
    cmd += ["--config-dir", str(repo / "configs")]
    env = push_env(tmp_path, server, creds)
    return subprocess.run(cmd, check=False, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_first_push_creates_dataset_with_zipped_folders_and_kernel_offline(
    repo: Path, tmp_path: Path
) -> None:
    bundle, digest = make_bundle(tmp_path)
    make_kernel(tmp_path)
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server)
    assert code == 0, err
    assert data["dataset"]["action"] == "created"
    assert data["bundle_sha256"] == digest
    created = server.rpcs("CreateDataset")
    assert len(created) == 1
    body = created[0].body
    assert (body["ownerSlug"], body["slug"], body["licenseName"]) == (
        USERNAME,
        "spectramind-v50-bundle",
        "CC0-1.0",
    )
    assert created[0].auth == "bearer"
    # Every file token the dataset names was really uploaded, folders as zips.
    names = {server.blobs[f["token"]].name for f in body["files"]}
    assert names == {MANIFEST_NAME, "requirements.lock", "boot.zip", "wheels.zip"}
    wheels = next(b for b in server.blobs.values() if b.name == "wheels.zip")
    assert zipfile.ZipFile(io.BytesIO(wheels.data)).namelist() == ["demo-0.1-py3-none-any.whl"]
    assert server.rpcs("GetDatasetStatus"), "push must wait for READY"
    saved = server.rpcs("SaveKernel")
    assert len(saved) == 1
    assert saved[0].body["enableInternet"] is False
    assert saved[0].body["datasetDataSources"] == [REF]
    assert data["kernels"][0]["version"] == 1
    assert any("internet turned off" in c for c in data["kernels"][0]["changes"])
    assert TOKEN not in err and TOKEN not in json.dumps(data)


def test_second_push_versions_with_hash_then_skips_same_hash(repo: Path, tmp_path: Path) -> None:
    bundle, digest = make_bundle(tmp_path)
    with KaggleServer() as server:
        server.seed_dataset(REF, "an older bundle_sha256=" + "0" * 64)
        code, data, err = push(repo, tmp_path, bundle, server, creds="key")
        assert code == 0, err
        assert data["dataset"]["action"] == "versioned"
        version = server.rpcs("CreateDatasetVersion")[0]
        assert version.auth == f"basic:{USERNAME}"
        assert f"bundle_sha256={digest}" in version.body["body"]["versionNotes"]
        uploads_before = len([r for r in server.requests if r.method == "PUT"])

        code, data, err = push(repo, tmp_path, bundle, server, creds="json")
        assert code == 0, err
        assert data["dataset"]["action"] == "skipped"
        assert len(server.rpcs("CreateDatasetVersion")) == 1
        assert len([r for r in server.requests if r.method == "PUT"]) == uploads_before
        assert not server.rpcs("StartBlobUpload")[uploads_before:]


def test_dry_run_sends_nothing(repo: Path, tmp_path: Path) -> None:
    bundle, digest = make_bundle(tmp_path)
    make_kernel(tmp_path)
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server, "--dry-run", "--wait")
    assert code == 0, err
    assert server.requests == []  # not even the token introspection of `import kaggle`
    assert data["dry_run"] is True
    assert "wheels.zip (folder)" in data["dataset"]["uploads"]
    assert f"bundle_sha256={digest}" in data["dataset"]["version_notes"]
    assert data["kernels"][0]["metadata"]["enable_internet"] is False
    assert data["kernels"][0]["metadata"]["dataset_sources"] == [REF]
    assert "dry run" in err


def test_missing_credentials_names_every_way(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server, creds="none")
    assert code == 1
    assert server.requests == []
    fix = data["fix"]
    for way in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json"):
        assert way in fix
        assert way in err


def test_tampered_bundle_is_refused_before_anything_is_sent(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    (bundle / "requirements.lock").write_text("tampered\n")
    with KaggleServer() as server:
        code, data, _ = push(repo, tmp_path, bundle, server)
    assert code == 3
    assert "requirements.lock" in data["what"]
    assert server.requests == []


def test_credential_file_in_bundle_is_refused_before_anything_is_sent(repo: Path, tmp_path: Path) -> None:
    leaked = json.dumps({"username": USERNAME, "key": KEY})
    bundle, _ = make_bundle(tmp_path, extra={"configs/kaggle.json": leaked})
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server)
    assert code == 3
    assert "credential" in data["what"]
    assert KEY not in err and KEY not in json.dumps(data)
    assert server.requests == []


def test_wait_downloads_outputs_log_and_summary_then_submits(repo: Path, tmp_path: Path) -> None:
    bundle, digest = make_bundle(tmp_path)
    make_kernel(tmp_path, internet=False)
    summary = {"bundle_sha256": digest, "exit_reason": "ok"}
    with KaggleServer(kernel_polls=2) as server:
        server.kernel_outputs["run_hash_summary_v50.json"] = json.dumps(summary).encode()
        code, data, err = push(repo, tmp_path, bundle, server, "--wait", "--submit")
    assert code == 0, err
    kernel = data["kernels"][0]
    assert kernel["status"] == "COMPLETE"
    assert kernel["run_hash_summary"] == summary
    out = Path(kernel["output_dir"])
    assert (out / "submission.csv").read_bytes() == server.kernel_outputs["submission.csv"]
    assert "boot ok" in (out / "spectramind-v50-predict.log").read_text()
    assert len(server.rpcs("GetKernelSessionStatus")) == 3  # QUEUED, RUNNING, COMPLETE
    assert kernel["changes"] == [f"attached the bundle dataset {REF}"]
    sub = server.submissions[0]
    assert (sub["competitionName"], sub["kernelSlug"], sub["kernelVersion"]) == (
        COMPETITION,
        "spectramind-v50-predict",
        1,
    )
    assert sub["fileName"] == "submission.csv"
    assert data["submissions"][0]["competition"] == COMPETITION


def test_push_after_first_creation_skips_via_remote_manifest(repo: Path, tmp_path: Path) -> None:
    """A new dataset's first version has no notes: the remote MANIFEST.json tells its hash."""
    bundle, _ = make_bundle(tmp_path)
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server)
        assert (code, data["dataset"]["action"]) == (0, "created"), err
        uploads = len(server.rpcs("StartBlobUpload"))
        code, data, err = push(repo, tmp_path, bundle, server)
        assert (code, data["dataset"]["action"]) == (0, "skipped"), err
        assert [r.status for r in server.rpcs("DownloadDataset")] == [302]
        assert len(server.rpcs("StartBlobUpload")) == uploads

        changed, _ = make_bundle(tmp_path / "next", payload="v2")
        code, data, err = push(repo, tmp_path, changed, server)
        assert (code, data["dataset"]["action"]) == (0, "versioned"), err


def test_human_output_shows_kernel_log_and_run_summary(repo: Path, tmp_path: Path) -> None:
    bundle, digest = make_bundle(tmp_path)
    make_kernel(tmp_path)
    with KaggleServer() as server:
        server.kernel_outputs["run_hash_summary_v50.json"] = json.dumps({"exit_reason": "ok"}).encode()
        proc = run_cli(repo, tmp_path, bundle, server, "--wait")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # human output goes to stderr only
    for needle in (digest, "run_hash_summary_v50.json", "exit_reason", "spectramind-v50-predict.log"):
        assert needle in proc.stderr
