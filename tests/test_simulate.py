"""``python -m bundler simulate``: the bundle boots inside real namespaces (no network, read-only input).

The image is a tiny one (one distribution, from a local wheel folder); the sandbox recreates and
caches it exactly as it does the real simulation image.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundler import sandbox
from tests.support.bundles import BundleSpec, Pin, make_bundle, make_data, make_spectramind_wheel
from tests.support.images import image_manifest
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))


class SimKit:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.wheels = root / "wheels"
        self.alpha = make_wheel(self.wheels, "alpha", "1.0")
        self.imgpkg = make_wheel(self.wheels, "imgpkg", "1.0", requires=["imgdep>=1"])
        self.imgdep = make_wheel(self.wheels, "imgdep", "3.0")
        self.spectramind = make_spectramind_wheel(self.wheels)
        major, minor = sys.version_info[:2]
        self.image = root / "image.json"
        self.image.write_text(
            json.dumps(
                image_manifest(
                    "test-image",
                    [
                        {"name": "imgpkg", "version": "1.0", "requires_dist": ["imgdep>=1"]},
                        {"name": "imgdep", "version": "3.0", "requires_dist": []},
                        {"name": "unrelated", "version": "9.9", "requires_dist": []},
                    ],
                    python=f"{major}.{minor}.0",
                    glibc=None,
                    platforms=["any"],
                )
            )
        )
        self.data = make_data(root / "data")

    def bundle(
        self, tmp: Path, *, ship_alpha: bool = True, install: str = "site", skipped: tuple[Pin, ...] = ()
    ) -> Path:
        spec = BundleSpec(
            pins=[
                Pin("alpha", "1.0", self.alpha, ship=ship_alpha),
                Pin("imgpkg", "1.0", self.imgpkg, ship=False),
                *skipped,
            ],
            spectramind=self.spectramind,
            install=install,
        )
        return make_bundle(tmp / "bundle", spec)

    def simulate(
        self, bundle: Path, out: Path, *extra: str, budget: float = 30, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
        full.update(
            SPECTRAMIND_SIM_IMAGE=str(self.image),
            SPECTRAMIND_SIM_CACHE=str(self.root / "cache"),
            SPECTRAMIND_SIM_FIND_LINKS=str(self.wheels),
            SPECTRAMIND_SIM_INDEX_URL="none",
            SPECTRAMIND_INFO_TIMEOUT_S="20",
        )
        full.update(env or {})
        cmd = [sys.executable, "-m", "bundler", "simulate", str(bundle), "--data", str(self.data)]
        cmd += ["--budget", str(budget), "--out", str(out), "--json", *extra]
        proc = subprocess.run(
            cmd, env=full, capture_output=True, text=True, timeout=budget + 150, check=False
        )
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc, data


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> SimKit:
    return SimKit(tmp_path_factory.mktemp("sim"))


def test_good_bundle_boots_offline_and_writes_valid_submission(kit: SimKit, tmp_path: Path) -> None:
    out = tmp_path / "working"
    proc, data = kit.simulate(kit.bundle(tmp_path), out)
    assert proc.returncode == 0, proc.stderr
    assert data["ok"] is True and data["exit_code"] == 0 and data["reason"] == "completed"
    assert data["submission"]["valid"] is True
    sub = (out / "submission.csv").read_text().splitlines()
    assert sub[0] == "planet_id,wl_1,wl_2,sigma_1,sigma_2" and sub[1].endswith("0.75,0.75,0.75,0.75")
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["bundle"] == "/kaggle/input/spectramind-test-bundle"
    assert summary["activate"]["distributions"] == 2  # alpha and spectramind; imgpkg: the recreated image
    assert data["image_env"]["packages"] == 2  # imgpkg and its dependency imgdep, not "unrelated"
    proc2, data2 = kit.simulate(kit.bundle(tmp_path / "again"), out)  # --out we made is reused
    assert proc2.returncode == 0 and data2["image_env"]["cached"] is True


PROBE = r"""
import json, os, socket, sys
res = {"visible": {p: os.path.exists(p) for p in sys.argv[2:]}}
res["tmp"] = sorted(os.listdir("/tmp"))
res["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
res["own_tmp_writable"] = open("/tmp/x", "w").write("x") == 1
for host, port in (("1.1.1.1", 53), ("127.0.0.1", int(sys.argv[1]))):
    try:
        socket.create_connection((host, port), timeout=3).close()
        res[host] = "connected"
    except OSError as exc:
        res[host] = type(exc).__name__ + ": " + str(exc)
for path in ("/kaggle/input/spectramind-test-bundle/x", "/kaggle/input/ariel-data-challenge-2025/x",
             "/kaggle/input/new"):
    try:
        open(path, "w").write("x")
        res[path] = "written"
    except OSError as exc:
        res[path] = exc.errno
open("/kaggle/working/probe.json", "w").write(json.dumps(res))
print("stdout of the command goes to stderr, never into --json")
"""


def test_network_absent_input_read_only_and_nothing_of_the_host_visible(
    kit: SimKit, tmp_path: Path, repo: Path
) -> None:
    server = socket.create_server(("127.0.0.1", 0))  # listening here (backlog accepts), unseen in the sandbox
    port = server.getsockname()[1]
    (kit.data / "probe.py").write_text(PROBE)  # the competition data is what the kernel can read
    sock_path = tmp_path / "host.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(sock_path))  # a unix socket on the host, beside the bundle
    bundle = kit.bundle(tmp_path)
    hidden = [str(bundle), str(sock_path), str(repo), str(tmp_path), "/work"]
    out = tmp_path / "working"
    kaggle_before = Path("/kaggle").exists()
    try:
        command = f"python /kaggle/input/ariel-data-challenge-2025/probe.py {port} {' '.join(hidden)}"
        proc, data = kit.simulate(bundle, out, "--command", command)
    finally:
        server.close()
        unix.close()
    assert Path("/kaggle").exists() == kaggle_before  # no mount point made on the host
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "probe.json").read_text())
    assert res["1.1.1.1"].startswith("OSError") and "unreachable" in res["1.1.1.1"]
    assert res["127.0.0.1"] != "connected"
    erofs = 30
    assert res["/kaggle/input/spectramind-test-bundle/x"] == erofs
    assert res["/kaggle/input/ariel-data-challenge-2025/x"] == erofs
    assert res["/kaggle/input/new"] == erofs
    assert res["visible"] == dict.fromkeys(hidden, False)  # the host's paths and sockets are not there
    assert res["own_tmp_writable"] and "host.sock" not in res["tmp"]
    assert len(res["pids"]) < 20 and 1 in res["pids"]  # its own PID namespace: no host processes
    assert data["submission"]["valid"] is True  # the fallback, written before the command
    assert "never into --json" in proc.stderr  # kit.simulate parsed stdout as one JSON object


def test_wheels_mode_missing_wheel_fails_fast(kit: SimKit, tmp_path: Path) -> None:
    started = time.monotonic()
    proc, data = kit.simulate(kit.bundle(tmp_path, ship_alpha=False, install="wheels"), tmp_path / "w")
    assert proc.returncode == 3, proc.stderr
    assert "the bundle has no wheel for alpha==1.0" in proc.stderr
    assert data["submission"]["valid"] is True  # sample_submission.csv as the last resort
    assert time.monotonic() - started < 60


def test_tampered_bundle_exits_3(kit: SimKit, tmp_path: Path) -> None:
    bundle = kit.bundle(tmp_path)
    with (bundle / "requirements.lock").open("a") as fh:
        fh.write("# tampered\n")
    proc, data = kit.simulate(bundle, tmp_path / "w")
    assert proc.returncode == 3
    assert "modified: requirements.lock" in proc.stderr
    assert data["exit_code"] == 3 and data["reason"] == "verification-failed"


def test_too_small_budget_exits_124_with_valid_submission(kit: SimKit, tmp_path: Path) -> None:
    out = tmp_path / "w"
    env = {
        "SPECTRAMIND_SAFETY_MARGIN_S": "1",
        "SPECTRAMIND_GRACE_INT_S": "0.5",
        "SPECTRAMIND_GRACE_TERM_S": "0.5",
    }
    proc, data = kit.simulate(
        kit.bundle(tmp_path), out, "--command", "python -c 'import time; time.sleep(60)'", budget=4, env=env
    )
    assert proc.returncode == 124, proc.stderr
    assert data["exit_code"] == 124 and data["reason"] == "budget"
    assert data["submission"]["valid"] is True
    assert data["seconds"] < 15
    assert [s["signal"] for s in data["signals"]] == ["SIGINT"]  # python exits on KeyboardInterrupt


def test_image_drift_both_ways_is_named_before_the_payload_runs(kit: SimKit, tmp_path: Path) -> None:
    # Locked against an image that had imgdep 2.0 and ghostpkg 1.0; the live image has imgdep 3.0
    # and no ghostpkg at all.
    drifted = (
        Pin("imgdep", "2.0", kit.imgdep, ship=False),
        Pin("ghostpkg", "1.0", kit.alpha, ship=False),
    )
    out = tmp_path / "w"
    proc, _ = kit.simulate(kit.bundle(tmp_path, skipped=drifted), out)
    assert proc.returncode == 0, proc.stderr  # drift is named, the run goes on (the fallback is on disk)
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert sorted(summary["drift"], key=lambda d: d["name"]) == [
        {"name": "ghostpkg", "locked": "1.0", "found": None},
        {"name": "imgdep", "locked": "2.0", "found": "3.0"},
    ]
    line = next(x for x in proc.stderr.splitlines() if "image drift" in x)
    assert "imgdep: locked 2.0" in line and "found 3.0" in line and "ghostpkg: locked 1.0" in line
    assert proc.stderr.index("image drift") < proc.stderr.index("fallback submission written")
    log = (out / "v50_debug_log.md").read_text()
    assert "ghostpkg 1.0 -> None" in log and "imgdep 2.0 -> 3.0" in log


def test_refuses_to_empty_a_foreign_out_dir(kit: SimKit, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    proc, data = kit.simulate(kit.bundle(tmp_path), out)
    assert proc.returncode == 2 and data["ok"] is False
    assert (out / "precious.txt").read_text() == "keep"
