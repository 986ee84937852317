"""Unit tests of the stdlib shim's pieces: lock parsing, version/tag matching, submissions, budget runner."""

from __future__ import annotations

import ast
import signal
import sys
import time
from pathlib import Path

import pytest

from spectramind.shim import base, budget, install, locate, records, target, verify

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
    pins = install.parse_lock(LOCK.format(a="a" * 64, b="b" * 64, c="c" * 64))
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
    with pytest.raises(base.BootError, match="cannot read lock line"):
        install.parse_lock("numpy>=1.0\n")


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
    assert base.version_satisfies(installed, pinned) is ok


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
    assert target.platform_ok(tag, "x86_64", glibc) is ok


def test_wheel_ok_for_the_running_interpreter() -> None:
    abi = target.running_abi()
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    glibc = (2, 35)
    assert target.wheel_ok("alpha-1.0-py3-none-any.whl", abi, "x86_64", glibc)
    assert target.wheel_ok(
        f"numpy-2.1.3-{cp}-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", abi, "x86_64", glibc
    )
    assert target.wheel_ok("cryptography-43.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", abi, "x86_64", glibc)
    assert not target.wheel_ok("numpy-2.1.3-cp399-cp399-manylinux_2_17_x86_64.whl", abi, "x86_64", glibc)
    assert not target.wheel_ok(f"numpy-2.1.3-{cp}-{cp}-manylinux_2_39_x86_64.whl", abi, "x86_64", glibc)
    assert not target.wheel_ok("broken.whl", abi, "x86_64", glibc)


def test_check_target_names_the_mismatch() -> None:
    running = target.check_target({"target": {"python": f"{sys.version_info[0]}.{sys.version_info[1]}"}})
    assert running["abi"] == target.running_abi()
    with pytest.raises(base.BootError, match="targets ABI cp311t"):
        target.check_target({"target": {"abi": "cp311t"}})
    with pytest.raises(base.BootError, match="none of the bundle's platforms"):
        target.check_target({"target": {"platforms": ["manylinux_2_17_s390x"]}})


def test_submission_problem(tmp_path: Path) -> None:
    sub, sample = tmp_path / "s.csv", tmp_path / "sample.csv"
    sample.write_text("planet_id,a,b\n1,0,0\n2,0,0\n")
    assert records.submission_problem(sub) == "missing"
    sub.write_text("planet_id,a,b\n1,0.5,1e-3\n2,0.5,0.1\n")
    assert records.submission_problem(sub, sample) is None
    sub.write_text("planet_id,a,b\n1,0.5,nan\n2,0.5,0.1\n")
    assert "non-finite" in str(records.submission_problem(sub))
    sub.write_text("planet_id,a,b\n1,0.5\n")
    assert "fields" in str(records.submission_problem(sub))
    sub.write_text("planet_id,a,b\n1,0.5,0.1\n")
    assert "rows" in str(records.submission_problem(sub, sample))
    sub.write_text("id,a,b\n1,0.5,0.1\n2,0,0\n")
    assert "header" in str(records.submission_problem(sub, sample))


def test_read_flat_yaml_and_profile(tmp_path: Path) -> None:
    (tmp_path / "k.yaml").write_text(
        "# c\nname: kaggle\nbudget_s: 32400   # 9 h\ndata_dir: '/x y'\nnested:\n  a: 1\n"
    )
    assert budget.read_flat_yaml(tmp_path / "k.yaml") == {
        "name": "kaggle",
        "budget_s": "32400",
        "data_dir": "/x y",
    }
    assert budget.read_flat_yaml(tmp_path / "missing.yaml") == {}
    assert budget.profile_name(["spectramind", "predict", "+env=ci"]) == "ci"


def test_budget_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SPECTRAMIND_BUDGET_S",
        "SPECTRAMIND_SAFETY_MARGIN_S",
        "SPECTRAMIND_GRACE_INT_S",
        "SPECTRAMIND_GRACE_TERM_S",
    ):
        monkeypatch.delenv(name, raising=False)
    b = budget.load_budget({"budget_s": "32400", "safety_margin_s": "900"}, 1000.0)
    assert (b.soft, b.hard) == (1000 + 32400 - 900, 1000 + 32400 - 900 + 90)
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "10")
    assert budget.load_budget({"safety_margin_s": "900"}, 0.0).margin_s == 5  # at most half the budget


@pytest.mark.parametrize("value", ["ten", "nan", "inf", "-5", "0", ""])
def test_budget_knob_must_be_a_finite_positive_number(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", value)
    if value == "":  # unset: the profile's value
        assert budget.load_budget({"budget_s": "60"}, 0.0).budget_s == 60
        return
    with pytest.raises(base.BootError, match="not a finite number of seconds >= 1"):
        budget.load_budget({}, 0.0)


def test_bad_profile_budget_names_the_profile() -> None:
    with pytest.raises(base.BootError) as info:
        budget.load_budget({"budget_s": "lots"}, 0.0, "configs/env/kaggle.yaml")
    assert info.value.where == "configs/env/kaggle.yaml"


def test_bad_boot_start_falls_back_to_now_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRAMIND_BOOT_START", "yesterday")
    start, problem = budget.boot_start(123.0)
    assert start == 123.0 and problem is not None and "SPECTRAMIND_BOOT_START" in problem


def test_run_budgeted_escalates_and_reports_overshoot() -> None:
    code = "import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    start = time.time()
    outcome = budget.run_budgeted([sys.executable, "-c", code], {}, start + 0.5, 0.3, 5.0)
    assert outcome.code == 124 and outcome.reason == "budget"
    assert [s["signal"] for s in outcome.signals] == ["SIGINT", "SIGTERM"]  # TERM is not ignored
    assert outcome.overshoot_s is not None and outcome.overshoot_s < -4  # gone well before SIGKILL time
    assert outcome.seconds < 3
    done = budget.run_budgeted([sys.executable, "-c", "raise SystemExit(3)"], {}, time.time() + 30, 1, 1)
    assert (done.code, done.reason, done.overshoot_s) == (3, "failed", None)
    own = budget.run_budgeted([sys.executable, "-c", "raise SystemExit(124)"], {}, time.time() + 30, 1, 1)
    assert (own.code, own.reason, own.signals) == (124, "budget", [])  # stopped itself at its deadline


def test_run_budgeted_missing_command_is_a_boot_error() -> None:
    with pytest.raises(base.BootError, match="cannot start"):
        budget.run_budgeted(["/nonexistent/cmd"], {}, time.time() + 5, 1, 1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_shim_imports_only_the_standard_library_and_itself(repo: Path) -> None:
    modules = sorted((repo / "src" / "spectramind" / "shim").glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        tree = ast.parse(path.read_text())
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
        }
        assert mods <= set(sys.stdlib_module_names) | {"__future__"}, (path.name, mods)
        assert len(path.read_text().splitlines()) <= 400, f"{path.name} is over ~400 lines"


def test_command_killed_by_a_signal_exits_128_plus_n() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    outcome = budget.run_budgeted([sys.executable, "-c", code], {}, time.time() + 30, 1, 1)
    assert (outcome.code, outcome.reason) == (128 + signal.SIGTERM, "failed")


@pytest.mark.parametrize("layout", ["slug", "slug/inner", "datasets/owner/slug"])
def test_locate_bundle_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / layout
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "kaggle-boot.sh").write_text("")
    (root / "MANIFEST.json").write_text("{}")
    (tmp_path / "ariel-data-challenge-2025" / "boot").mkdir(parents=True)  # no MANIFEST: not a bundle
    (tmp_path / "ariel-data-challenge-2025" / "boot" / "kaggle-boot.sh").write_text("")
    assert locate.locate_bundle(tmp_path) == root


def test_second_bundle_attached_is_refused_naming_both(tmp_path: Path) -> None:
    roots = [tmp_path / "one", tmp_path / "datasets" / "me" / "two"]
    for root in roots:
        (root / "boot").mkdir(parents=True)
        (root / "boot" / "kaggle-boot.sh").write_text("")
        (root / "MANIFEST.json").write_text("{}")
    for here in (None, roots[0]):
        with pytest.raises(base.BootError) as info:
            locate.locate_bundle(tmp_path, here)
        assert info.value.code == 3 and all(str(r) in info.value.where for r in roots)


def test_unexpected_bundle_hash_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPECTRAMIND_BUNDLE_SHA256", "a" * 64)
    with pytest.raises(base.BootError, match="not the one this kernel expects") as info:
        locate.check_expected({"bundle_sha256": "b" * 64}, tmp_path)
    assert info.value.code == 3
    assert locate.check_expected({"bundle_sha256": "a" * 64}, tmp_path) == "a" * 64
    monkeypatch.delenv("SPECTRAMIND_BUNDLE_SHA256")
    assert locate.check_expected({"bundle_sha256": "b" * 64}, tmp_path) is None


def test_locate_bundle_missing_names_the_patterns(tmp_path: Path) -> None:
    with pytest.raises(base.BootError) as info:
        locate.locate_bundle(tmp_path)
    assert "datasets/*/*/boot/kaggle-boot.sh" in info.value.where and "attach the bundle" in info.value.fix


@pytest.mark.parametrize(("args", "mode"), [([], "overlap"), (["boot.verify=strict"], "strict")])
def test_verify_mode_from_the_command(args: list[str], mode: str) -> None:
    assert verify.verify_mode(["spectramind", "predict", *args]) == mode


def test_bad_verify_mode_is_a_clear_error() -> None:
    with pytest.raises(base.BootError, match=r"boot\.verify='fast' is not one of overlap, strict"):
        verify.verify_mode(["spectramind", "predict", "boot.verify=fast"])
