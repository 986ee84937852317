"""find_python (the target image's interpreter) and what the sandbox can recreate of an image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bundler.errors import UsageError
from bundler.image import load_image_file
from bundler.imagepackages import sandbox_inputs
from bundler.interpreters import find_python
from tests.support.images import image_manifest
from tests.support.wheels import make_wheel

HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _minor_of(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2], sep='.')"], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def test_the_running_interpreter_is_found_first() -> None:
    assert find_python(HERE) == Path(sys.executable)


def test_a_cp312_interpreter_is_found_and_runs_3_12() -> None:
    python = find_python("3.12")
    if python is None:
        pytest.skip("no Python 3.12 on this machine (PATH, pyenv, uv)")
    assert _minor_of(python) == "3.12"


def test_a_broken_pyenv_shim_on_path_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyenv shim exists for every installed version but fails when that version is not selected."""
    shim = tmp_path / "python3.99"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    assert find_python("3.99") is None


def _image(tmp_path: Path, python: str = HERE) -> Path:
    dists = [
        {"name": "numpy", "version": "2.1.3", "requires_dist": []},
        {"name": "torch", "version": "2.5.1+cpu", "requires_dist": []},
        {"name": "python-apt", "version": "0.0.0", "requires_dist": []},
    ]
    path = tmp_path / "img.json"
    path.write_text(json.dumps(image_manifest("img", dists, python=python)))
    return path


PACKAGES = [("numpy", "2.1.3"), ("python-apt", "0.0.0"), ("torch", "2.5.1+cpu")]


def test_image_only_builds_stop_a_payload_boot_naming_them(tmp_path: Path) -> None:
    image = load_image_file(_image(tmp_path))
    with pytest.raises(
        UsageError, match=r"cannot recreate image package\(s\) python-apt==0.0.0, torch==2.5.1\+cpu"
    ):
        sandbox_inputs(image, PACKAGES, [], payload=True)


def test_a_payload_free_boot_runs_without_them(tmp_path: Path) -> None:
    image = load_image_file(_image(tmp_path))
    packages, python = sandbox_inputs(image, PACKAGES, [], payload=False)
    assert packages == [("numpy", "2.1.3")] and python == Path(sys.executable)


def test_an_image_build_in_a_wheel_folder_is_installable(tmp_path: Path) -> None:
    image = load_image_file(_image(tmp_path))
    make_wheel(tmp_path / "wheels", "torch", "2.5.1+cpu", tag=f"cp{HERE.replace('.', '')}-none-any")
    packages, _ = sandbox_inputs(image, PACKAGES, [tmp_path / "wheels"], payload=False)
    assert packages == [("numpy", "2.1.3"), ("torch", "2.5.1+cpu")]


def test_an_image_python_this_machine_lacks_is_a_clear_error(tmp_path: Path) -> None:
    image = load_image_file(_image(tmp_path, python="3.99.0"))
    with pytest.raises(UsageError, match=r"needs Python 3.99 \(image img\) and none is installed here"):
        sandbox_inputs(image, [("numpy", "2.1.3")], [], payload=True)
