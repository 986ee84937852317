"""Unit tests of the stdlib shim's pieces: lock parsing, version/tag matching, submissions, budget runner."""

from __future__ import annotations

import ast
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from spectramind import shim

LOCK = """\
# spectramind-lock: requirements-in-sha256=abc target=t image=i image-sha256=def
#    pip-compile --generate-hashes
--index-url https://pypi.org/simple

antlr4-python3-runtime==4.9.3 \\
    --hash=sha256:{a}
    # via omegaconf
Torch==2.13.0 ; python_version >= "3.11" \\
    --hash=sha256:{b} \\
    --hash=sha256:{c}
    # via -r requirements.in
hydra-core[extra]==1.3.2 --hash=sha256:{a}  # inline comment
"""


def test_parse_lock_joins_continuations_and_keeps_hashes_and_markers() -> None:
    pins = shim.parse_lock(LOCK.format(a="a" * 64, b="b" * 64, c="c" * 64))
    assert [(p.name, p.version) for p in pins] == [
        ("antlr4-python3-runtime", "4.9.3"),
        ("Torch", "2.13.0"),
        ("hydra-core", "1.3.2"),
    ]
    assert pins[1].hashes == ("b" * 64, "c" * 64)
    assert pins[1].marker == 'python_version >= "3.11"'
    assert pins[1].key == "torch"
    assert (
        pins[1].requirement_line().startswith('Torch==2.13.0 ; python_version >= "3.11" --hash=sha256:bbbb')
    )


def test_parse_lock_rejects_unpinned_lines() -> None:
    with pytest.raises(shim.BootError, match="cannot read lock line"):
        shim.parse_lock("numpy>=1.0\n")


@pytest.mark.parametrize(
    ("installed", "pinned", "ok"),
    [
        ("2.13.0+cpu", "2.13.0", True),
        ("2.13.0", "2.13.0", True),
        ("2.0", "2.0.0", True),
        ("2.13.1", "2.13.0", False),
        ("2.13.0", "2.13.0+cu121", False),
        ("1.10", "1.1", False),
    ],
)
def test_version_satisfies(installed: str, pinned: str, ok: bool) -> None:
    assert shim.version_satisfies(installed, pinned) is ok


@pytest.mark.parametrize(
    ("tag", "glibc", "ok"),
    [
        ("manylinux_2_17_x86_64", (2, 35), True),
        ("manylinux_2_36_x86_64", (2, 35), False),
        ("manylinux2014_x86_64", (2, 17), True),
        ("manylinux2014_x86_64", (2, 12), False),
        ("manylinux_2_17_aarch64", (2, 35), False),
        ("linux_x86_64", None, True),
        ("any", None, True),
        ("win_amd64", (2, 35), False),
    ],
)
def test_platform_ok(tag: str, glibc: tuple[int, int] | None, ok: bool) -> None:
    assert shim.platform_ok(tag, "x86_64", glibc) is ok


def test_wheel_ok_for_the_running_interpreter() -> None:
    abi = shim.running_abi()
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    glibc = (2, 35)
    assert shim.wheel_ok("alpha-1.0-py3-none-any.whl", abi, "x86_64", glibc)
    assert shim.wheel_ok(
        f"numpy-2.1.3-{cp}-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", abi, "x86_64", glibc
    )
    assert shim.wheel_ok("cryptography-43.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", abi, "x86_64", glibc)
    assert not shim.wheel_ok("numpy-2.1.3-cp399-cp399-manylinux_2_17_x86_64.whl", abi, "x86_64", glibc)
    assert not shim.wheel_ok(f"numpy-2.1.3-{cp}-{cp}-manylinux_2_39_x86_64.whl", abi, "x86_64", glibc)
    assert not shim.wheel_ok("broken.whl", abi, "x86_64", glibc)


def test_check_target_names_the_mismatch() -> None:
    running = shim.check_target({"target": {"python": f"{sys.version_info[0]}.{sys.version_info[1]}"}})
    assert running["abi"] == shim.running_abi()
    with pytest.raises(shim.BootError, match="targets ABI cp311t"):
        shim.check_target({"target": {"abi": "cp311t"}})
    with pytest.raises(shim.BootError, match="none of the bundle's platforms"):
        shim.check_target({"target": {"platforms": ["manylinux_2_17_s390x"]}})


def test_submission_problem(tmp_path: Path) -> None:
    sub, sample = tmp_path / "s.csv", tmp_path / "sample.csv"
    sample.write_text("planet_id,a,b\n1,0,0\n2,0,0\n")
    assert shim.submission_problem(sub) == "missing"
    sub.write_text("planet_id,a,b\n1,0.5,1e-3\n2,0.5,0.1\n")
    assert shim.submission_problem(sub, sample) is None
    sub.write_text("planet_id,a,b\n1,0.5,nan\n2,0.5,0.1\n")
    assert "non-finite" in str(shim.submission_problem(sub))
    sub.write_text("planet_id,a,b\n1,0.5\n")
    assert "fields" in str(shim.submission_problem(sub))
    sub.write_text("planet_id,a,b\n1,0.5,0.1\n")
    assert "rows" in str(shim.submission_problem(sub, sample))
    sub.write_text("id,a,b\n1,0.5,0.1\n2,0,0\n")
    assert "header" in str(shim.submission_problem(sub, sample))


def test_read_flat_yaml_and_profile(tmp_path: Path) -> None:
    (tmp_path / "k.yaml").write_text(
        "# c\nname: kaggle\nbudget_s: 32400   # 9 h\ndata_dir: '/x y'\nnested:\n  a: 1\n"
    )
    assert shim.read_flat_yaml(tmp_path / "k.yaml") == {
        "name": "kaggle",
        "budget_s": "32400",
        "data_dir": "/x y",
    }
    assert shim.read_flat_yaml(tmp_path / "missing.yaml") == {}
    assert shim.profile_name(["spectramind", "predict", "+env=ci"]) == "ci"


def test_budget_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SPECTRAMIND_BUDGET_S",
        "SPECTRAMIND_SAFETY_MARGIN_S",
        "SPECTRAMIND_GRACE_INT_S",
        "SPECTRAMIND_GRACE_TERM_S",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPECTRAMIND_BOOT_START", "1000")
    b = shim.load_budget({"budget_s": "32400", "safety_margin_s": "900"})
    assert (b.soft, b.hard) == (1000 + 32400 - 900, 1000 + 32400 - 900 + 90)
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "10")
    assert shim.load_budget({"safety_margin_s": "900"}).margin_s == 5  # at most half the budget
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "ten")
    with pytest.raises(shim.BootError, match="not a number"):
        shim.load_budget({})


def test_run_budgeted_escalates_and_reports_overshoot() -> None:
    code = "import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    start = time.time()
    outcome = shim.run_budgeted([sys.executable, "-c", code], {}, start + 0.5, 0.3, 5.0)
    assert outcome.code == 124 and outcome.reason == "budget"
    assert [s["signal"] for s in outcome.signals] == ["SIGINT", "SIGTERM"]  # TERM is not ignored
    assert outcome.overshoot_s is not None and outcome.overshoot_s < -4  # gone well before SIGKILL time
    assert outcome.seconds < 3
    done = shim.run_budgeted([sys.executable, "-c", "raise SystemExit(3)"], {}, time.time() + 30, 1, 1)
    assert (done.code, done.reason, done.overshoot_s) == (3, "failed", None)
    own = shim.run_budgeted([sys.executable, "-c", "raise SystemExit(124)"], {}, time.time() + 30, 1, 1)
    assert (own.code, own.reason, own.signals) == (124, "budget", [])  # stopped itself at its deadline


def test_run_budgeted_missing_command_is_a_boot_error() -> None:
    with pytest.raises(shim.BootError, match="cannot start"):
        shim.run_budgeted(["/nonexistent/cmd"], {}, time.time() + 5, 1, 1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_shim_imports_only_the_standard_library(repo: Path) -> None:
    tree = ast.parse((repo / "src" / "spectramind" / "shim.py").read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods - set(sys.stdlib_module_names)


def test_command_killed_by_a_signal_exits_128_plus_n() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    outcome = shim.run_budgeted([sys.executable, "-c", code], {}, time.time() + 30, 1, 1)
    assert (outcome.code, outcome.reason) == (128 + signal.SIGTERM, "failed")


def test_bad_budget_knob_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "nine hours")
    assert shim.main(["--bundle", str(tmp_path), "true"]) == 1
    assert "SPECTRAMIND_BUDGET_S='nine hours' is not a number" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["slug", "slug/inner", "datasets/owner/slug"])
def test_locate_bundle_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / layout
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "shim.py").write_text("")
    (root / "MANIFEST.json").write_text("{}")
    (tmp_path / "ariel-data-challenge-2025" / "boot").mkdir(parents=True)  # no MANIFEST: not a bundle
    (tmp_path / "ariel-data-challenge-2025" / "boot" / "shim.py").write_text("")
    assert shim.locate_bundle(tmp_path) == root


def test_locate_bundle_missing_names_the_patterns(tmp_path: Path) -> None:
    with pytest.raises(shim.BootError) as info:
        shim.locate_bundle(tmp_path)
    assert "datasets/*/*/boot/shim.py" in info.value.where and "attach the bundle" in info.value.fix


def test_uv_runs_only_from_a_wheel_matching_the_manifest_and_learns_the_interpreter(tmp_path: Path) -> None:
    from tests.support.bundles import make_uv_wheel

    bundle, work = tmp_path / "bundle", tmp_path / "work"
    wheel = make_uv_wheel(bundle / "wheels")
    work.mkdir()
    listed = {"files": [{"path": f"wheels/{wheel.name}", "sha256": shim.file_sha256(wheel)}]}
    tampered = {"files": [{"path": f"wheels/{wheel.name}", "sha256": "0" * 64}]}
    assert shim.prepare_uv(bundle, work, tampered) is None
    assert not (work / "uv").exists()  # an unverified binary is not kept
    binary = shim.prepare_uv(bundle, work, listed)
    assert binary == work / "uv" and binary.stat().st_mode & 0o111
    # uv asked this interpreter for its paths and tags beside verification, in the install's cache
    assert [p.name for p in (work / "uv-cache").glob("interpreter-v*")]


def test_deflated_uv_wheel_still_unpacks_and_verification_reuses_the_digest(tmp_path: Path) -> None:
    import zipfile
    from concurrent.futures import Future

    from tests.support.bundles import make_uv_wheel

    bundle, work = tmp_path / "bundle", tmp_path / "work"
    stored = make_uv_wheel(tmp_path / "stored")
    (bundle / "wheels").mkdir(parents=True)
    wheel = bundle / "wheels" / stored.name
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(wheel, "w") as out:
        for info in src.infolist():  # as PyPI serves it: deflated
            out.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    work.mkdir()
    rel = f"wheels/{wheel.name}"
    manifest = {"files": [{"path": rel, "sha256": shim.file_sha256(wheel), "size": wheel.stat().st_size}]}
    manifest["bundle_sha256"] = shim.bundle_sha256(manifest["files"])
    (bundle / shim.MANIFEST_NAME).write_text(json.dumps(manifest))
    digest: Future[str | None] = Future()
    binary = shim.extract_uv(bundle, work, manifest, digest)
    with zipfile.ZipFile(stored) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".data/scripts/uv"))
        assert binary is not None and binary.read_bytes() == zf.read(member)
    assert digest.result() == manifest["files"][0]["sha256"]
    assert shim.verify_bundle(bundle, {rel: digest}).ok
    wrong: Future[str | None] = Future()
    wrong.set_result("0" * 64)  # what a tampered file would hash to: reported, not trusted
    assert shim.verify_bundle(bundle, {rel: wrong}).modified == [rel]
    unknown: Future[str | None] = Future()
    unknown.set_result(None)  # nothing hashed elsewhere: verification hashes it itself
    assert shim.verify_bundle(bundle, {rel: unknown}).ok
