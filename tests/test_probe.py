"""probe: stdlib-only image capture whose tags agree with packaging, in every way it is run."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from bundler import probe
from bundler.image import load_image_file

PROBE = Path(probe.__file__)


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )


def test_tags_match_packaging_sys_tags() -> None:
    """The stdlib tag logic yields exactly what pip/packaging accept here, in the same order.

    Only the rank of the plain ``linux_<arch>`` tag (locally built wheels, never on an index) moved
    between packaging releases (last before 26.4, first since), so it is compared as membership.
    """
    ours = probe.interpreter_tags(probe.platform_tags())
    theirs = [str(t) for t in sys_tags()]
    assert set(ours) == set(theirs)

    def indexable(tags: list[str]) -> list[str]:
        return [t for t in tags if not t.split("-")[2].startswith("linux_")]

    assert indexable(ours) == indexable(theirs)


def test_platform_tags_cover_every_manylinux_level() -> None:
    if platform.system() != "Linux" or probe.glibc_version() is None:
        pytest.skip("manylinux tags exist only on glibc Linux")
    major, minor = probe.glibc_version() or (0, 0)
    machine = probe._arch()
    tags = probe.platform_tags()
    assert tags[0] == f"manylinux_{major}_{minor}_{machine}"
    assert f"manylinux2014_{machine}" in tags
    assert tags[-1] == f"linux_{machine}"
    if machine == "x86_64":
        assert f"manylinux_2_5_{machine}" in tags and f"manylinux1_{machine}" in tags
    assert platform.libc_ver()[1].startswith(f"{major}.{minor}")


def test_script_mode_is_stdlib_only_and_parses(tmp_path: Path) -> None:
    """`python -S bundler/probe.py` (no site-packages at all) still writes a loadable manifest."""
    out = tmp_path / "bare.json"
    proc = _run("-S", str(PROBE), "--name", "bare", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = load_image_file(out)
    assert manifest.name == "bare"
    assert manifest.python == platform.python_version()
    assert manifest.abi == f"cp{sys.version_info[0]}{sys.version_info[1]}"


def test_cli_probe_lists_distributions_with_requires(tmp_path: Path) -> None:
    out = tmp_path / "images" / "here.json"
    proc = _run("-m", "bundler", "probe", "--out", str(out), cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == 1 and data["name"] == "here"  # name defaults to the file's stem
    assert set(data["cuda"]) >= {"driver", "runtime"}
    manifest = load_image_file(out)
    from importlib.metadata import requires, version

    rich = manifest.get("rich")
    assert rich is not None and rich.version == version("rich")
    assert set(rich.requires) == set(requires("rich") or [])
    assert manifest.platforms == tuple(probe.platform_tags())
    assert not list(out.parent.glob(".here.json.*"))  # the temp file of the atomic write is gone


def test_stdout_when_no_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(Namespace(out=None, name="x")) == 0
    data = json.loads(capsys.readouterr().out)
    names = {d["name"].lower() for d in data["distributions"]}
    assert "pytest" in names and len(names) == len(data["distributions"])


def test_unwritable_out_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert probe.main(Namespace(out=str(blocker / "x.json"), name=None)) == 1
    err = capsys.readouterr().err
    assert "could not write the image manifest" in err and "fix:" in err


def test_pasted_into_a_notebook_cell(tmp_path: Path) -> None:
    """A notebook passes `-f kernel.json` and must not see SystemExit: the cell prints the JSON."""
    code = (
        "import sys, types\n"
        "sys.modules['ipykernel'] = types.ModuleType('ipykernel')\n"
        "sys.argv = ['ipykernel_launcher.py', '-f', '/tmp/kernel-1.json']\n"
        f"source = open({str(PROBE)!r}).read()\n"
        "exec(compile(source, '<cell>', 'exec'), {'__name__': '__main__'})\n"
        "print('CELL-DONE', file=sys.stderr)\n"
    )
    proc = _run("-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "CELL-DONE" in proc.stderr
    if Path("/kaggle/working").is_dir():
        pytest.skip("a real /kaggle/working exists: the cell wrote there")
    assert json.loads(proc.stdout)["name"] == "kaggle-image"


def test_created_honours_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert probe.capture("x")["created"] == "2023-11-14T22:13:20Z"


@pytest.mark.gpu
def test_cuda_driver_detected_on_a_gpu_machine() -> None:
    info = probe.cuda_info()
    if not info["gpus"]:
        pytest.skip("no NVIDIA GPU here")
    assert info["driver"] is not None and info["driver_version"]
    tools = probe.tools(info["driver_version"])
    assert tools["nvidia-smi"] is not None and tools["nvidia-smi"]["driver_version"] == info["driver_version"]


def test_probe_records_uv_on_path_and_its_version(tmp_path: Path) -> None:
    """What boot relies on beyond pip: the uv on PATH (here: the dev install's) and its version."""
    from bundler.resolver import uv_binary, uv_version

    out = tmp_path / "tools.json"
    env = {"PATH": f"{Path(uv_binary()).parent}:/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-S", str(PROBE), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    tools = json.loads(out.read_text())["tools"]
    assert tools["uv"] == {"path": uv_binary(), "version": uv_version()}
    if shutil.which("nvidia-smi", path=env["PATH"]) is None:
        assert tools["nvidia-smi"] is None


@pytest.mark.parametrize(
    ("version", "cuda"),
    [
        ("2.6.0+cu124", "12.4"),
        ("2.5.1+cu118", "11.8"),
        ("2.9.0+cu130", "13.0"),
        ("2.10.0+cpu", None),
        ("2.4.0", None),
    ],
)
def test_torch_cuda_build_from_the_local_label(version: str, cuda: str | None) -> None:
    assert probe.torch_cuda_from_version(version) == cuda


def test_nvidia_packages_are_listed() -> None:
    dists = [
        {"name": "nvidia_cublas_cu12", "version": "12.4.5.8"},
        {"name": "nvidia-ml-py", "version": "12.560.30"},
        {"name": "numpy", "version": "2.1.3"},
    ]
    assert probe.cuda_packages(dists) == ["nvidia_cublas_cu12==12.4.5.8", "nvidia-ml-py==12.560.30"]
