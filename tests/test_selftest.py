"""``spectramind test``: the environment self-test, run as users run it (a subprocess, --json)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundles import running_target, write_manifest


def selftest(repo: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    full.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "spectramind.cli", "test", "--json", *args],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def bundle_with_lock(root: Path, pins: dict[str, str]) -> Path:
    """A bundle whose lock pins ``pins`` (name -> version); hashes are irrelevant to the self-test."""
    root.mkdir(parents=True)
    lines = [f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n" for name, version in pins.items()]
    (root / "requirements.lock").write_text("".join(lines))
    (root / "configs").mkdir()
    (root / "configs" / "x.yaml").write_text("a: 1\n")
    write_manifest(root, target=running_target(), image={"name": "t", "sha256": "0" * 64}, skipped=[])
    return root


def by_name(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in data["checks"]}


def test_all_checks_pass_in_a_fit_environment(repo: Path, tmp_path: Path) -> None:
    bundle = bundle_with_lock(tmp_path / "input" / "b", {"rich": importlib.metadata.version("rich")})
    env = {
        "SPECTRAMIND_BUNDLE": str(bundle),
        "SPECTRAMIND_INPUT": str(tmp_path / "input"),
        "SPECTRAMIND_OUTPUT": str(tmp_path / "out"),
    }
    code, data, stderr = selftest(repo, env)
    assert code == 0, data
    checks = by_name(data)
    assert data["ok"] is True and data["failed"] == []
    assert checks["python"]["status"] == "ok" and "MANIFEST.json" in data["target_source"]
    assert checks["bundle"]["status"] == "ok" and checks["packages"]["detail"].startswith("1/1")
    assert checks["output"]["status"] == "ok" and checks["input"]["status"] == "ok"
    assert checks["gpu"]["status"] == "ok"  # a GPU, or a clean "no GPU"
    if not _has_gpu():
        assert checks["gpu"]["detail"].startswith("no GPU")
    assert "spectramind self-test" in stderr  # the rich table


def test_failures_exit_1_and_name_what_failed(repo: Path, tmp_path: Path) -> None:
    bundle = bundle_with_lock(tmp_path / "input" / "b", {"rich": "0.0.1", "not-installed-pkg": "1.0"})
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    manifest["target"]["python"] = "3.99"
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest))
    (bundle / "configs" / "x.yaml").write_text("a: 2\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {
        "SPECTRAMIND_BUNDLE": str(bundle),
        "SPECTRAMIND_INPUT": str(tmp_path / "input"),
        "SPECTRAMIND_OUTPUT": str(blocker / "out"),
    }
    gpu = _has_gpu()
    code, data, _ = selftest(repo, env, *([] if gpu else ["env.cuda_required=true"]))
    assert code == 1
    expected = {"python/platform", "bundle", "packages", "output"} | (set() if gpu else {"gpu", "cuda"})
    assert set(data["failed"]) == expected
    checks = by_name(data)
    assert "3.99" in checks["python/platform"]["detail"]
    assert "modified configs/x.yaml" in checks["bundle"]["detail"]
    assert "rich==0.0.1 (have" in checks["packages"]["detail"]
    assert "not-installed-pkg==1.0 (have none)" in checks["packages"]["detail"]
    if not gpu:
        assert checks["gpu"]["detail"].startswith("no GPU")  # required by the profile, so a failure


def _has_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = int(pynvml.nvmlDeviceGetCount())
        pynvml.nvmlShutdown()
    except Exception:  # no driver, no library
        return False
    return count > 0


@pytest.mark.gpu
def test_gpu_is_reported_through_nvml(repo: Path, tmp_path: Path) -> None:
    if not _has_gpu():
        pytest.skip("no NVIDIA GPU here")
    code, data, _ = selftest(repo, {"SPECTRAMIND_OUTPUT": str(tmp_path), "SPECTRAMIND_INPUT": str(tmp_path)})
    assert code == 0, data
    gpu = by_name(data)["gpu"]
    assert gpu["status"] == "ok" and "GPU(s):" in gpu["detail"] and "driver" in gpu["detail"], gpu
    print(gpu["detail"], by_name(data)["cuda"]["detail"])
