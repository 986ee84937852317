"""Faults the real service produces, injected by the loopback server, and how push survives them."""

from __future__ import annotations

from pathlib import Path

from tests.kaggle_server import Faults, KaggleServer
from tests.test_push import REF, make_bundle, make_kernel, push


def _puts(server: KaggleServer) -> list[tuple[int, str]]:
    return [(r.status, r.body["content_range"]) for r in server.requests if r.method == "PUT"]


def test_429_with_retry_after_is_honoured(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    faults = Faults(rate_limit={"GetDatasetStatus": 1, "StartBlobUpload": 1}, retry_after="1")
    with KaggleServer(faults=faults) as server:
        code, data, err = push(repo, tmp_path, bundle, server)
    assert code == 0, err
    assert data["dataset"]["action"] == "created"
    for rpc in ("GetDatasetStatus", "StartBlobUpload"):
        calls = server.rpcs(rpc)
        assert calls[0].status == 429
        assert calls[1].status == 200
        assert calls[1].at - calls[0].at >= 0.9, f"{rpc} retried before Retry-After elapsed"


def test_503_on_put_resumes_the_upload(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    with KaggleServer(faults=Faults(put_503=1)) as server:
        code, _data, err = push(repo, tmp_path, bundle, server)
    assert code == 0, err
    puts = _puts(server)
    assert puts[0][0] == 503
    assert puts[1] == (308, f"bytes */{server.blobs['blob-1'].length}")  # resume query
    assert puts[2][0] == 200
    assert all(blob.complete for blob in server.blobs.values())
    assert len(server.rpcs("StartBlobUpload")) == 4  # one per entry: no new session was needed


def test_expired_upload_restarts_with_a_new_session(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    with KaggleServer(faults=Faults(put_503=1, expire_upload=True)) as server:
        code, _data, err = push(repo, tmp_path, bundle, server)
    assert code == 0, err
    puts = _puts(server)
    assert [p[0] for p in puts[:3]] == [503, 404, 200]
    assert len(server.rpcs("StartBlobUpload")) == 5  # the expired session was replaced
    created = server.rpcs("CreateDataset")[0].body
    assert "blob-1" not in {f["token"] for f in created["files"]}  # the dead token is not used


def test_dataset_failed_stops_before_kernels(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    make_kernel(tmp_path)
    with KaggleServer(faults=Faults(dataset_failed=True), status_polls=2) as server:
        code, data, _ = push(repo, tmp_path, bundle, server)
    assert code == 1
    assert "FAILED" in data["what"]
    assert REF in data["what"]
    answered = [r for r in server.rpcs("GetDatasetStatus") if r.status == 200]  # a 404 probe precedes
    assert len(answered) == 3  # two not-ready answers, then FAILED
    assert server.rpcs("SaveKernel") == []


def test_kernel_error_reports_failure_message_and_keeps_log(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    make_kernel(tmp_path)
    message = "Your notebook tried to allocate more memory than is available"
    with KaggleServer(faults=Faults(kernel_error=message)) as server:
        code, data, _ = push(repo, tmp_path, bundle, server, "--wait", "--submit")
    assert code == 1
    assert "ERROR" in data["what"]
    assert message in data["what"]
    log = Path(data["where"]) / "predict" / "spectramind-v50-predict.log"
    assert "boot ok" in log.read_text()
    assert server.submissions == []  # nothing is submitted from a failed run
    assert data["ok"] is False
    assert data["kernels"][0]["status"] == "ERROR"
    assert data["kernels"][0]["url"].endswith("/code/tester/spectramind-v50-predict")


def test_overall_timeout_while_kernel_runs(repo: Path, tmp_path: Path) -> None:
    bundle, _ = make_bundle(tmp_path)
    make_kernel(tmp_path)
    with KaggleServer(kernel_polls=10_000) as server:
        code, data, _ = push(repo, tmp_path, bundle, server, "--wait", "--timeout", "3")
    assert code == 1
    assert "timed out" in data["what"]
    assert "--timeout" in data["where"]
    assert len(server.rpcs("GetKernelSessionStatus")) >= 2
