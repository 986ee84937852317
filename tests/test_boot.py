"""Boot end to end on hand-built bundles: kaggle-boot.sh → shim → activate → fallback → run → records.

Each boot runs with a thin per-test venv over a cached "image" venv (bundler.sandbox) as its Python;
``bundle.install=wheels`` installs go into that venv, never into the interpreter running the tests.
The read-only mount and the network namespace are exercised in test_activate.py / test_simulate.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import sandbox
from bundler.image import Distribution, ImageManifest
from tests.support.bundles import BundleSpec, Pin, make_bundle, make_data, make_spectramind_wheel
from tests.support.wheels import make_sdist, make_wheel


class Kit:
    """Wheels and a cached image venv shared by the tests of this module."""

    def __init__(self, root: Path) -> None:
        self.wheels = root / "wheels"
        self.alpha = make_wheel(self.wheels, "alpha", "1.0")
        self.alpha_sdist = make_sdist(root / "sdists", "alpha", "1.0")  # alpha's wheel was "built" from it
        self.beta = make_wheel(self.wheels, "beta", "2.0")
        self.imgpkg = make_wheel(self.wheels, "imgpkg", "1.0")
        self.spectramind = make_spectramind_wheel(self.wheels)
        image = ImageManifest(
            name="test-image",
            sha256="0" * 64,
            python=".".join(map(str, sys.version_info[:3])),
            abi=f"cp{sys.version_info[0]}{sys.version_info[1]}",
            platforms=(),
            glibc=None,
            cuda={},
            distributions={"imgpkg": Distribution("imgpkg", "1.0", ())},
        )
        self.image = sandbox.image_env(
            image, [("imgpkg", "1.0")], root / "cache", find_links=[self.wheels], index_url=None
        )

    def spec(self, *, install: str = "site", ship_beta: bool = True, pyc: bool = True) -> BundleSpec:
        return BundleSpec(
            pins=[
                Pin("alpha", "1.0", self.alpha, sdist=self.alpha_sdist),
                Pin("beta", "2.0", self.beta, ship=ship_beta),
                Pin("imgpkg", "1.0", self.imgpkg, ship=False),
            ],
            spectramind=self.spectramind,
            install=install,
            pyc=pyc,
        )


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("kit"))


def boot(
    kit: Kit, tmp: Path, bundle: Path, *command: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], Path]:
    run_dir = tmp / "runenv"
    python = sandbox.run_env(kit.image, run_dir)
    out = tmp / "working"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SPECTRAMIND_", "PIP_", "UV_"))}
    full.update(
        SPECTRAMIND_PYTHON=str(python),
        SPECTRAMIND_INPUT=str(tmp / "input"),
        SPECTRAMIND_OUTPUT=str(out),
        SPECTRAMIND_DATA=str(make_data(tmp / "data")),
        SPECTRAMIND_INFO_TIMEOUT_S="20",
        PATH=f"{run_dir}/bin:{os.environ['PATH']}",
    )
    full.update(env or {})
    proc = subprocess.run(
        ["bash", str(bundle / "boot" / "kaggle-boot.sh"), *command],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc, out


def test_good_bundle_boots_activates_in_place_and_records(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "spectramind-test-bundle", kit.spec())
    proc, out = boot(kit, tmp_path, bundle)
    assert proc.returncode == 0, proc.stderr
    sub = (out / "submission.csv").read_text()
    assert sub.splitlines()[1].endswith("0.75,0.75,0.75,0.75")  # the command's, not the fallback's
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert "install" not in summary  # nothing was installed: site/ was activated in place
    assert summary["activate"]["distributions"] == 3  # alpha, beta, spectramind (imgpkg: the image's)
    assert summary["activate"]["pyc"] == "unchecked-hash" and summary["activate"]["pycache_prefix"] is None
    assert summary["verification"]["mode"] == "overlap" and summary["verification"]["ok"] is True
    assert summary["verification"]["deferred_files"] > 0 and summary["verification"]["full_done_s"] > 0
    assert not list((tmp_path / "runenv").rglob("alpha*"))  # the run env got nothing
    assert summary["exit"] == {
        "code": 0,
        "reason": "completed",
        "signals": [],
        "overshoot_s": None,
        "error": None,
    }
    for key in ("start", "verify", "check", "activate", "fallback", "run", "total"):
        assert key in summary["timings_s"]
    assert "install" not in summary["timings_s"]
    assert summary["bundle_sha256"] and summary["lock_sha256"] and summary["config_sha256"]
    assert summary["determinism_env"]["PYTHONHASHSEED"] == "1337"
    assert summary["determinism_env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert summary["submission"]["valid"] and summary["submission"]["source"] == "command"
    assert "exit 0 (completed)" in (out / "v50_debug_log.md").read_text()


SLOW = r"""
import csv, os, signal, subprocess, sys, time
out = os.environ["SPECTRAMIND_OUTPUT"]
mode = sys.argv[1]
log = open(os.path.join(out, "signals.log"), "a")

def write(value):
    tmp = os.path.join(out, ".sub.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["planet_id", "wl_1", "wl_2", "sigma_1", "sigma_2"])
        for i in range(3):
            w.writerow([1000 + i, value, value, 0.01, 0.01])
    os.replace(tmp, os.path.join(out, "submission.csv"))

def note(sig, _frame):
    log.write(f"{signal.Signals(sig).name}\n")
    log.flush()
    if mode == "polite":
        write(0.9)
        sys.exit(124)

signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
if mode == "crash":
    open(os.path.join(out, "submission.csv"), "w").write("planet_id,wl_1\n1000,nan-garbage\n")
    sys.exit(7)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(os.path.join(out, "child.pid"), "w").write(str(child.pid))
while True:
    write(0.8)
    time.sleep(0.05)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


def test_slow_command_gets_int_term_kill_and_overshoot_is_measured(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    knobs = {
        "SPECTRAMIND_BUDGET_S": "5",
        "SPECTRAMIND_SAFETY_MARGIN_S": "2",
        "SPECTRAMIND_GRACE_INT_S": "0.6",
        "SPECTRAMIND_GRACE_TERM_S": "0.6",
    }
    proc, out = boot(kit, tmp_path, bundle, "python", str(script), "stubborn", env=knobs)
    assert proc.returncode == 124, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert [s["signal"] for s in summary["exit"]["signals"]] == ["SIGINT", "SIGTERM", "SIGKILL"]
    assert (out / "signals.log").read_text().split() == ["SIGINT", "SIGTERM"]
    overshoot = summary["exit"]["overshoot_s"]
    assert overshoot is not None and 0 <= overshoot < 0.5, overshoot  # dead right at the hard deadline
    assert summary["budget"]["used_s"] < 5  # the whole boot stayed inside the budget
    assert summary["submission"]["valid"]
    assert _gone(int((out / "child.pid").read_text()))  # the whole process group went
    print(f"overshoot past the hard deadline: {overshoot * 1000:.1f} ms")


def test_too_small_budget_exits_124_with_valid_submission(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    knobs = {"SPECTRAMIND_BUDGET_S": "3", "SPECTRAMIND_SAFETY_MARGIN_S": "1"}
    proc, out = boot(kit, tmp_path, bundle, "python", str(script), "polite", env=knobs)
    assert proc.returncode == 124, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert [s["signal"] for s in summary["exit"]["signals"]] == ["SIGINT"]  # it flushed and left
    assert "0.9" in (out / "submission.csv").read_text()
    assert summary["submission"] == {
        "path": str(out / "submission.csv"),
        "valid": True,
        "problem": None,
        "source": "last-written",
    }


def test_budget_spent_before_the_command_still_leaves_a_submission(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    import time

    knobs = {"SPECTRAMIND_BOOT_START": str(time.time() - 100), "SPECTRAMIND_BUDGET_S": "60"}
    proc, out = boot(kit, tmp_path, bundle, env=knobs)
    assert proc.returncode == 124, proc.stderr
    assert "no time left" in proc.stderr
    assert (out / "submission.csv").read_text() == (tmp_path / "data" / "sample_submission.csv").read_text()


def test_crash_keeps_last_valid_submission_and_nonzero_exit(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    proc, out = boot(kit, tmp_path, bundle, "python", str(script), "crash")
    assert proc.returncode == 7
    assert "0.5" in (out / "submission.csv").read_text()  # the fallback's, restored
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "failed" and summary["submission"]["source"] == "restored"


def test_wheels_mode_missing_wheel_fails_fast_with_clear_error(kit: Kit, tmp_path: Path) -> None:
    # beta is listed as provided by the image, but the image does not have it
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec(ship_beta=False, install="wheels"))
    proc, out = boot(kit, tmp_path, bundle, timeout=30)
    assert proc.returncode == 3
    assert "the bundle has no wheel for beta==2.0" in proc.stderr
    assert "fix:" in proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["timings_s"]["total"] < 10 and summary["exit"]["reason"] == "verification-failed"
    assert summary["submission"]["source"] == "sample_submission"  # still a valid submission on disk


def test_tampered_bundle_exits_3_naming_the_file(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    (bundle / "configs" / "env" / "kaggle.yaml").write_text("budget_s: 1\n")
    (bundle / "site" / "lib" / "stray.py").write_bytes(b"x")
    proc, _ = boot(kit, tmp_path, bundle)
    assert proc.returncode == 3
    assert "modified: configs/env/kaggle.yaml" in proc.stderr and "extra: site/lib/stray.py" in proc.stderr
    assert "fallback submission written" not in proc.stderr  # nothing from the bundle ran
    summary = json.loads((tmp_path / "working" / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "verification-failed" and summary["git_commit"] == "0" * 40


def test_python_mismatch_is_a_clear_error(kit: Kit, tmp_path: Path) -> None:
    spec = kit.spec()
    spec.target = {**spec.target, "python": "3.99", "abi": "cp399"}
    bundle = make_bundle(tmp_path / "input" / "b", spec)
    proc, _ = boot(kit, tmp_path, bundle)
    assert proc.returncode == 1
    assert "bundle targets Python 3.99, this kernel runs Python 3." in proc.stderr


def test_wheels_mode_installs_with_the_images_uv(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec(install="wheels"))
    proc, out = boot(kit, tmp_path, bundle)  # this machine's PATH has uv: it plays the image's
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["install"]["installer"].startswith("uv (")
    assert {"alpha==1.0", "beta==2.0", "spectramind==0.5.0"} <= set(summary["install"]["installed"])
    assert summary["install"]["satisfied"] == ["imgpkg==1.0"]
    assert "install" in summary["timings_s"] and "activate" not in summary["timings_s"]


def test_wheels_mode_pip_when_the_image_has_no_uv_and_fallback_failure_copies_sample(
    kit: Kit, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec(install="wheels"))
    no_uv = f"{tmp_path / 'runenv' / 'bin'}:/usr/bin:/bin"
    env = {"FAKE_FALLBACK_FAIL": "1", "PATH": no_uv}
    proc, out = boot(kit, tmp_path, bundle, "python", "-c", "print('hi')", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["install"]["installer"] == "pip"
    assert "spectramind==0.5.0" in summary["install"]["installed"]
    assert summary["submission"]["source"] == "sample_submission"  # the command did not write one
    assert (out / "submission.csv").read_text() == (tmp_path / "data" / "sample_submission.csv").read_text()


def test_locates_bundle_under_datasets_layout(kit: Kit, tmp_path: Path, repo: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "datasets" / "owner" / "slug", kit.spec())
    run_dir = tmp_path / "runenv"
    python = sandbox.run_env(kit.image, run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    env.update(
        SPECTRAMIND_PYTHON=str(python),
        SPECTRAMIND_INPUT=str(tmp_path / "input"),
        SPECTRAMIND_OUTPUT=str(tmp_path / "w"),
        SPECTRAMIND_INFO_TIMEOUT_S="20",
    )
    proc = subprocess.run(
        ["bash", str(repo / "bin" / "kaggle-boot.sh"), "python", "-c", "print(1)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"bundle {bundle}" in proc.stderr


def test_no_bundle_is_a_clear_error(tmp_path: Path, repo: Path) -> None:
    env = dict(os.environ, SPECTRAMIND_INPUT=str(tmp_path))
    proc = subprocess.run(
        ["bash", str(repo / "bin" / "kaggle-boot.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1 and "no SpectraMind bundle found" in proc.stderr


def test_kaggle_boot_is_shellcheck_clean(repo: Path) -> None:
    proc = subprocess.run(
        ["shellcheck", str(repo / "bin" / "kaggle-boot.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


PROBE_SITE = r"""
import importlib.metadata, json, os, sys
import alpha
out = os.environ["SPECTRAMIND_OUTPUT"]
json.dump({"alpha": alpha.__file__, "version": importlib.metadata.version("alpha"),
           "cached": getattr(alpha, "__cached__", None), "prefix": sys.pycache_prefix},
          open(os.path.join(out, "probe.json"), "w"))
"""


def test_bundle_without_pyc_compiles_into_a_writable_cache(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec(pyc=False))
    assert not list((bundle / "site").rglob("*.pyc"))
    script = tmp_path / "probe.py"
    script.write_text(PROBE_SITE)
    proc, out = boot(kit, tmp_path, bundle, "python", str(script))
    assert proc.returncode == 0, proc.stderr
    probe = json.loads((out / "probe.json").read_text())
    assert probe["alpha"].startswith(str(bundle / "site" / "lib")) and probe["version"] == "1.0"
    assert probe["prefix"] and probe["cached"].startswith(probe["prefix"])  # bytecode went to the cache
    assert not list((bundle / "site").rglob("*.pyc"))  # and never next to the bundle's sources
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["activate"]["pyc"] == "none" and summary["activate"]["pycache_prefix"] == probe["prefix"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01  # same size: only the content hash can tell
    path.write_bytes(bytes(data))


def test_tampered_site_file_beside_the_run_exits_3_leaving_only_the_sample(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    _flip_a_byte(bundle / "site" / "lib" / "beta" / "__init__.py")
    proc, out = boot(kit, tmp_path, bundle)
    assert proc.returncode == 3, proc.stderr
    assert "site/lib/beta/__init__.py" in proc.stderr
    sample = (tmp_path / "data" / "sample_submission.csv").read_text()
    assert (out / "submission.csv").read_text() == sample  # neither the fallback's 0.5 nor the command's
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "verification-failed"
    assert summary["verification"]["ok"] is False
    assert summary["verification"]["modified"] == ["site/lib/beta/__init__.py"]
    assert summary["submission"]["source"] == "sample_submission"


def test_strict_verification_runs_nothing_from_a_tampered_bundle(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    _flip_a_byte(bundle / "site" / "lib" / "spectramind" / "cli.py")
    marker = tmp_path / "ran"
    env = {"SPECTRAMIND_VERIFY": "strict"}
    proc, out = boot(kit, tmp_path, bundle, "python", "-c", f"open({str(marker)!r}, 'w')", env=env)
    assert proc.returncode == 3, proc.stderr
    assert not marker.exists() and "fallback" not in proc.stderr.replace("first fallback", "")
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["verification"]["mode"] == "strict" and summary["verification"]["ok"] is False
    assert summary["submission"]["source"] == "sample_submission"


def test_strict_verification_of_an_intact_bundle_runs(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    proc, out = boot(kit, tmp_path, bundle, "spectramind", "predict", "boot.verify=strict")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["verification"]["mode"] == "strict" and summary["verification"]["waited_s"] == 0


@pytest.mark.parametrize("case", ["wrong-hash", "second-bundle"])
def test_wrong_or_second_bundle_exits_3_before_anything_runs(kit: Kit, tmp_path: Path, case: str) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    env: dict[str, str] = {}
    if case == "wrong-hash":
        env["SPECTRAMIND_BUNDLE_SHA256"] = "f" * 64
    else:
        make_bundle(tmp_path / "input" / "older", kit.spec(ship_beta=False))
    marker = tmp_path / "ran"
    proc, out = boot(kit, tmp_path, bundle, "python", "-c", f"open({str(marker)!r}, 'w')", env=env)
    assert proc.returncode == 3, proc.stderr
    assert not marker.exists()
    assert (
        "not the one this kernel expects" if case == "wrong-hash" else "2 SpectraMind bundles"
    ) in proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "verification-failed"


def test_kernel_expecting_this_bundle_boots(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    expected = json.loads((bundle / "MANIFEST.json").read_text())["bundle_sha256"]
    proc, _ = boot(kit, tmp_path, bundle, env={"SPECTRAMIND_BUNDLE_SHA256": expected})
    assert proc.returncode == 0, proc.stderr
    assert "bundle is the one the kernel expects" in proc.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "nine hours"])
def test_bad_budget_knob_is_a_clear_error_and_still_leaves_submission_and_records(
    kit: Kit, tmp_path: Path, value: str
) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    proc, out = boot(kit, tmp_path, bundle, env={"SPECTRAMIND_BUDGET_S": value})
    assert proc.returncode == 1, proc.stderr
    assert f"SPECTRAMIND_BUDGET_S={value!r} is not a finite number of seconds" in proc.stderr
    assert (out / "submission.csv").read_text() == (tmp_path / "data" / "sample_submission.csv").read_text()
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "error" and summary["submission"]["source"] == "sample_submission"


def test_record_names_the_sample_when_it_is_what_remains(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    script = tmp_path / "slow.py"
    script.write_text("import time; time.sleep(30)\n")
    knobs = {"SPECTRAMIND_BUDGET_S": "2", "FAKE_FALLBACK_FAIL": "1"}
    proc, out = boot(kit, tmp_path, bundle, "python", str(script), env=knobs)
    assert proc.returncode == 124, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["submission"]["source"] == "sample_submission"  # not "last-written"


def test_a_command_that_says_it_is_degraded_is_recorded_as_such(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    (tmp_path / "working").mkdir()
    (tmp_path / "working" / "DEGRADED").write_text("stale, from an earlier run\n")
    code = "import os; open(os.environ['SPECTRAMIND_OUTPUT'] + '/DEGRADED', 'w').write('{\"reason\": \"no weights\"}')"
    proc, out = boot(kit, tmp_path, bundle, "python", "-c", code)
    assert proc.returncode == 0, proc.stderr  # the submission is still used
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "degraded" and "no weights" in summary["degraded"]
    proc, out = boot(kit, tmp_path, bundle, "python", "-c", "pass")
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "completed"  # a DEGRADED left by an earlier run does not count
