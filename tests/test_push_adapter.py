"""The Kaggle adapter's boundaries: credentials, redaction, and no `kaggle` on the run side."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from bundler.errors import BundlerError
from bundler.kaggle_api import Backoff, KaggleAdapter, RemoteDataset, credential_source, require_credentials


def test_credential_sources_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert credential_source({"HOME": str(home)}) is None
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "u", "key": "k" * 32}))
    assert credential_source({"HOME": str(home)}) == f"kaggle.json ({home / '.kaggle' / 'kaggle.json'})"
    both = {"HOME": str(home), "KAGGLE_USERNAME": "u", "KAGGLE_KEY": "secret-key-value"}
    assert credential_source(both) == "KAGGLE_USERNAME/KAGGLE_KEY"
    assert credential_source({**both, "KAGGLE_API_TOKEN": "KGAT_x"}) == "KAGGLE_API_TOKEN"
    # KAGGLE_CONFIG_DIR is honoured; a kaggle.json without a key is not credentials.
    other = tmp_path / "cfg"
    other.mkdir()
    (other / "kaggle.json").write_text(json.dumps({"username": "u"}))
    assert credential_source({"HOME": str(tmp_path / "nohome"), "KAGGLE_CONFIG_DIR": str(other)}) is None


def test_missing_credentials_error_names_all_ways(tmp_path: Path) -> None:
    with pytest.raises(BundlerError) as caught:
        require_credentials({"HOME": str(tmp_path)})
    text = f"{caught.value.what} {caught.value.where} {caught.value.fix}"
    for way in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json"):
        assert way in text
    assert caught.value.exit_code == 1


def test_remote_hash_is_read_from_version_notes() -> None:
    digest = "ab" * 32
    assert (
        RemoteDataset("o/s", 3, f"SpectraMind V50 bundle_sha256={digest} git_commit=x", "").bundle_sha256
        == digest
    )
    assert RemoteDataset("o/s", 1, "Initial release", "").bundle_sha256 is None


def test_retry_honours_retry_after_then_gives_up_at_deadline() -> None:
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    class Response:
        status_code = 429
        headers: ClassVar[dict[str, str]] = {"Retry-After": "7"}

    class RateLimited(Exception):
        response = Response()

    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RateLimited("429 Too Many Requests")
        return "ok"

    adapter = KaggleAdapter(timeout_s=100, poll_s=1, sleep=sleep, clock=lambda: now[0])
    assert adapter.call("flaky", flaky) == "ok"
    assert slept == [7.0, 7.0]

    short = KaggleAdapter(timeout_s=5, poll_s=1, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(BundlerError, match="timed out"):
        short.call("always", lambda: (_ for _ in ()).throw(RateLimited("429")))


def test_errors_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "KGAT_abcdefghijklmnop"  # noqa: S105 - a fake token
    monkeypatch.setenv("KAGGLE_API_TOKEN", secret)

    def leak() -> None:
        raise ValueError(f"request with Authorization: Bearer {secret} failed")

    adapter = KaggleAdapter(timeout_s=10, poll_s=0.01, sleep=lambda _: None)
    with pytest.raises(BundlerError) as caught:
        adapter.call("leaky call", leak)
    assert secret not in caught.value.what
    assert "leaky call failed" in caught.value.what


def test_backoff_grows_to_cap() -> None:
    backoff = Backoff(1.0, factor=2.0, cap=5.0)
    assert [backoff.step() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_run_side_never_imports_kaggle(repo: Path) -> None:
    sources = sorted((repo / "src" / "spectramind").rglob("*.py"))
    assert sources, "run-side package not found"
    offenders = [str(p) for p in sources if _imported_modules(p) & {"kaggle", "kagglesdk"}]
    assert offenders == [], "the kernel must never import kaggle (it authenticates on import)"
    # And at run time: the shim and the CLI dispatch load without pulling the client in.
    probe = "import sys, spectramind.cli, spectramind.shim; print('kaggle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=repo)
    assert out.stdout.strip() == "False"


def test_only_the_adapter_imports_kaggle(repo: Path) -> None:
    offenders = [
        str(p.relative_to(repo))
        for p in sorted((repo / "bundler").rglob("*.py"))
        if p.name != "kaggle_api.py" and _imported_modules(p) & {"kaggle", "kagglesdk"}
    ]
    assert offenders == []
