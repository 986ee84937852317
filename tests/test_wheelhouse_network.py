"""Real PyPI (marked ``network``): target-tagged wheels and the antlr4 sdist built reproducibly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from bundler.fetch import IndexClient
from bundler.sdist import build_pure_wheel
from tests.support.wheels import sha256_file
from tests.test_wheelhouse import make_project, write_lock

PYPI = "https://pypi.org/simple"
pytestmark = pytest.mark.network


def release_hashes(project: str, version: str) -> list[str]:
    """Every sha256 of one release, as pip-compile --generate-hashes lists them."""
    files = IndexClient(PYPI).project_files(project)
    found = [f.sha256 for f in files if f"-{version}" in f.filename and f.sha256]
    assert found, f"{project} {version} not on PyPI"
    return [h for h in found if h]


def test_real_wheels_for_cp311_and_cp312_manylinux(tmp_path: Path) -> None:
    hashes = release_hashes("markupsafe", "3.0.2")  # small, ships wheels for many interpreters/platforms
    project = make_project(tmp_path)
    write_lock(project, [("markupsafe", "3.0.2", hashes)])
    result = project.build(PYPI)
    [wheel] = result.wheels
    _name, _version, _build, tags = parse_wheel_filename(wheel.filename)
    assert {t.interpreter for t in tags} == {"cp311"} and {t.abi for t in tags} == {"cp311"}
    assert all(t.platform.startswith("manylinux") and t.platform.endswith("_x86_64") for t in tags)
    assert wheel.sha256 in hashes and sha256_file(project.dest / wheel.filename) == wheel.sha256
    assert result.network_requests == 2  # one index page, one file

    shutil.rmtree(project.dest)
    warm = project.build(PYPI)
    assert warm.network_requests == 0 and warm.wheels[0].sha256 == wheel.sha256

    write_lock(project, [("markupsafe", "3.0.2", hashes)], target="kaggle-cp312")
    shutil.rmtree(project.dest)
    cp312 = project.build(PYPI, "target=kaggle-cp312", "target.image=tiny-img")
    _n, _v, _b, tags312 = parse_wheel_filename(cp312.wheels[0].filename)
    assert {t.interpreter for t in tags312} == {"cp312"}


def test_antlr4_sdist_builds_the_same_wheel_twice(tmp_path: Path) -> None:
    hashes = release_hashes("antlr4-python3-runtime", "4.9.3")  # hydra-core's dependency: sdist only
    project = make_project(tmp_path)
    write_lock(project, [("antlr4-python3-runtime", "4.9.3", hashes)])
    result = project.build(PYPI)
    [built] = result.built
    assert built.filename == "antlr4_python3_runtime-4.9.3-py3-none-any.whl"
    assert built.origin == "built" and built.sha256 not in hashes
    sdist = next((project.root / "cache" / "sha256").rglob("antlr4-python3-runtime-4.9.3.tar.gz"))
    assert sha256_file(sdist) in hashes
    again = build_pure_wheel(
        sdist,
        tmp_path / "again",
        name="antlr4-python3-runtime",
        version="4.9.3",
        index_url=PYPI,
        offline=False,
    )
    assert sha256_file(again) == built.sha256 == sha256_file(project.dest / built.filename)
