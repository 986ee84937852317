"""The training loop closed from the build side: push the training kernel, pull its weights, `dvc add`.

End to end through the real kaggle client against the loopback Kaggle server (tests/kaggle_server.py)
and a real git + DVC repository in tmp_path; the CLI runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bundler import dvc
from tests.kaggle_server import TOKEN, USERNAME, Faults, KaggleServer
from tests.test_push import make_bundle, push, push_env

KERNEL = f"{USERNAME}/spectramind-v50-train"


def model_bytes(tmp_path: Path, seed: int = 0) -> bytes:
    """Real weights, as `spectramind train` saves them."""
    import torch

    from spectramind.model import SpectrumRefiner, save

    torch.manual_seed(seed)
    path = tmp_path / f"model-{seed}.pt"
    save(SpectrumRefiner(8, 5), path, {"seed": seed})
    return path.read_bytes()


def make_project(repo: Path, root: Path) -> Path:
    """A git + DVC project with the repo's configs, owned by the loopback user, and a local remote."""
    shutil.copytree(repo / "configs", root / "configs")
    bundle_cfg = root / "configs" / "bundle" / "default.yaml"
    text = bundle_cfg.read_text().replace("dataset: spectramind/", f"dataset: {USERNAME}/", 1)
    bundle_cfg.write_text(text)
    (root / "weights").mkdir()
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "s", str(root.parent / "remote")],
    ):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=dvc._env())
    return root


def outputs(weights: bytes, *, sha: str | None = None, **summary: Any) -> dict[str, bytes]:
    import hashlib

    record = {"weights_sha256": sha or hashlib.sha256(weights).hexdigest(), "epochs_run": 300, **summary}
    return {
        "weights/v50.pt": weights,
        "train_summary.json": json.dumps(record).encode(),
        "run_hash_summary_v50.json": json.dumps({"exit": {"reason": "completed"}}).encode(),
    }


def pull(
    repo: Path, tmp_path: Path, project: Path, server: KaggleServer, *extra: str
) -> tuple[int, dict[str, Any], str]:
    cmd = [sys.executable, "-m", "bundler", "pull-weights", "--json", "--timeout", "60"]
    cmd += ["--config-dir", str(project / "configs"), *extra]
    env = push_env(tmp_path, server)
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=180, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stdout is not one JSON object:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.returncode, data, proc.stderr


def test_push_training_kernel_wait_then_pull_weights_tracks_them_for_the_build(
    repo: Path, tmp_path: Path
) -> None:
    project = make_project(repo, tmp_path / "project")
    bundle, _ = make_bundle(tmp_path)
    for name in ("spectramind-v50-infer", "spectramind-v50-train"):  # what build writes beside the bundle
        folder = tmp_path / "dist" / "kernels" / name
        shutil.copytree(repo / "kaggle" / name, folder)
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        meta["id"] = f"{USERNAME}/{name}"
        (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    weights = model_bytes(tmp_path)
    with KaggleServer() as server:
        server.kernel_outputs = outputs(weights)
        code, data, err = push(repo, tmp_path, bundle, server, "--kernel", "spectramind-v50-train", "--wait")
        assert code == 0, err
        assert [k["name"] for k in data["kernels"]] == ["spectramind-v50-train"]
        saved = server.rpcs("SaveKernel")
        assert [s.body["slug"] for s in saved] == [KERNEL]  # only the named kernel went up
        assert saved[0].body["enableGpu"] is True and saved[0].body["enableInternet"] is False
        assert data["kernels"][0]["status"] == "COMPLETE"
        assert "weights/v50.pt" in data["kernels"][0]["files"]

        code, data, err = pull(repo, tmp_path, project, server)
    assert code == 0, err
    target = project / "weights" / "v50.pt"
    assert target.read_bytes() == weights
    assert data["weights"]["record"] == "matched" and data["kernel"] == KERNEL
    assert (project / "weights" / "v50.pt.dvc").is_file() and data["dvc_file"].endswith("v50.pt.dvc")
    # What the next build sees: the weights match their pointer.
    statuses = dvc.ensure_weights(project, ["weights"])
    assert [(s.path, s.state) for s in statuses] == [("weights/v50.pt", "tracked")]
    assert (
        project / "outputs" / "kernel-output" / "spectramind-v50-train" / "spectramind-v50-train.log"
    ).is_file()
    assert TOKEN not in err and TOKEN not in json.dumps(data)
    assert not list((project / "weights").glob(".v50.pt.*"))  # no staging or backup file left behind


def test_push_without_kernel_names_leaves_the_training_kernel_alone(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    for name in ("spectramind-v50-infer", "spectramind-v50-train"):
        shutil.copytree(repo / "kaggle" / name, tmp_path / "dist" / "kernels" / name)
    with KaggleServer() as server:
        code, data, err = push(repo, tmp_path, bundle, server, "--dry-run")
    assert code == 0, err
    assert [k["name"] for k in data["kernels"]] == ["spectramind-v50-infer"]
    assert "--kernel spectramind-v50-train" in err  # says how to run it


def test_push_kernel_unknown_name_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    shutil.copytree(
        repo / "kaggle" / "spectramind-v50-train", tmp_path / "dist" / "kernels" / "spectramind-v50-train"
    )
    with KaggleServer() as server:
        code, data, _ = push(repo, tmp_path, bundle, server, "--kernel", "nope", "--dry-run")
    assert code == 2
    assert "nope" in data["what"] and "spectramind-v50-train" in data["fix"]
    assert server.requests == []


def test_pull_repeats_replace_the_weights_and_the_pointer(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    first, second = model_bytes(tmp_path, 1), model_bytes(tmp_path, 2)
    with KaggleServer() as server:
        server.seed_kernel(KERNEL)
        server.kernel_outputs = outputs(first)
        assert pull(repo, tmp_path, project, server)[0] == 0
        pointer = (project / "weights" / "v50.pt.dvc").read_text()
        server.kernel_outputs = outputs(second, stopped_early=True, epochs_run=12)
        code, data, err = pull(repo, tmp_path, project, server)
    assert code == 0, err
    assert (project / "weights" / "v50.pt").read_bytes() == second
    assert (project / "weights" / "v50.pt.dvc").read_text() != pointer
    assert data["weights"]["stopped_early"] is True
    assert "stopped at the time budget after 12 epochs" in err


def test_kernel_error_is_reported_with_its_log_and_nothing_is_placed(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    with KaggleServer(faults=Faults(kernel_error="CUDA out of memory")) as server:
        server.seed_kernel(KERNEL)
        server.kernel_outputs = outputs(model_bytes(tmp_path))
        code, data, err = pull(repo, tmp_path, project, server)
    assert code == 1
    assert "ended ERROR: CUDA out of memory" in data["what"]
    assert data["where"].endswith("spectramind-v50-train.log") and Path(data["where"]).is_file()
    assert "push" in data["fix"] and "--kernel spectramind-v50-train" in data["fix"]
    assert "ERROR" in err
    assert not (project / "weights" / "v50.pt").exists() and not (project / "weights" / "v50.pt.dvc").exists()


def test_kernel_error_without_any_output_still_reports_the_error(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    with KaggleServer(faults=Faults(kernel_error="kernel crashed", no_output=True)) as server:
        server.seed_kernel(KERNEL)
        code, data, _ = pull(repo, tmp_path, project, server)
    assert code == 1
    assert "ended ERROR: kernel crashed" in data["what"]
    assert "no log was downloaded" in data["where"]


def test_output_without_weights_names_what_it_has(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    with KaggleServer() as server:
        server.seed_kernel(KERNEL)
        server.kernel_outputs = {"submission.csv": b"planet_id\n"}
        code, data, _ = pull(repo, tmp_path, project, server)
    assert code == 1
    assert "has no weights/v50.pt" in data["what"] and "submission.csv" in data["what"]
    assert "spectramind train env=kaggle" in data["fix"]
    assert not (project / "weights" / "v50.pt").exists()


def test_corrupt_weights_are_refused(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    good = model_bytes(tmp_path)
    with KaggleServer() as server:
        server.seed_kernel(KERNEL)
        server.kernel_outputs = outputs(b"not a torch file")  # its record agrees: written broken
        code, data, _ = pull(repo, tmp_path, project, server)
        assert code == 3
        assert "do not load as a model" in data["what"]
        server.kernel_outputs = outputs(good, sha="0" * 64)  # altered on the way
        code, data, _ = pull(repo, tmp_path, project, server)
    assert code == 3
    assert "do not match the run's record" in data["what"]
    assert not (project / "weights" / "v50.pt").exists()


def test_dvc_failure_puts_the_previous_weights_back(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    previous = model_bytes(tmp_path, 3)
    (project / "weights" / "v50.pt").write_bytes(previous)
    (project / ".dvc" / "config").write_text("[core\nbroken = \n")
    with KaggleServer() as server:
        server.seed_kernel(KERNEL)
        server.kernel_outputs = outputs(model_bytes(tmp_path, 4))
        code, data, _ = pull(repo, tmp_path, project, server)
    assert code == 1
    assert "`dvc add weights/v50.pt` failed" in data["what"] and "previous file is back" in data["what"]
    assert (project / "weights" / "v50.pt").read_bytes() == previous


def test_not_a_dvc_repository_fails_before_anything_is_asked(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo, tmp_path / "project")
    shutil.rmtree(project / ".dvc")
    with KaggleServer() as server:
        code, data, _ = pull(repo, tmp_path, project, server)
    assert code == 2
    assert "not a DVC repository" in data["what"] and "dvc init" in data["fix"]
    assert server.requests == []
