"""`python -m bundler lock bundle.extras=[...]`: real uv against tiny wheels on a 127.0.0.1 index.

The index holds:
  app 1.0 -> heavy, light  (the base: requirements.in)
  heavy 1.0, light 1.0/2.0 (the image has heavy 1.0 and light 1.0)
  solver 1.0 -> light>=1, mp; solver 2.0 -> light>=2, mp  (the extra "symb")
  mp 1.0
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundler.cli import main
from bundler.config import load
from bundler.fetch import IndexClient
from bundler.lockfile import parse_lock
from bundler.tags import target_tags
from bundler.wheelhouse import pick_file
from tests.support.images import image_manifest
from tests.support.index import LocalIndex, serve_index
from tests.support.wheels import make_wheel

IMAGE = [("heavy", "1.0"), ("light", "1.0")]
PYPI = "https://pypi.org/simple"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    wheels = tmp_path_factory.mktemp("index")
    make_wheel(wheels, "app", "1.0", requires=["heavy", "light"])
    make_wheel(wheels, "heavy", "1.0")
    for version in ("1.0", "2.0"):
        make_wheel(wheels, "light", version)
    make_wheel(wheels, "solver", "1.0", requires=["light>=1", "mp"])
    make_wheel(wheels, "solver", "2.0", requires=["light>=2", "mp"])
    make_wheel(wheels, "mp", "1.0")
    with serve_index(wheels) as served:
        yield served


@pytest.fixture
def project(tmp_path: Path, repo: Path) -> Path:
    configs = tmp_path / "configs"
    shutil.copytree(repo / "configs", configs, ignore=shutil.ignore_patterns("*.json", "*.txt"))
    dists = [{"name": n, "version": v, "requires_dist": []} for n, v in IMAGE]
    image = image_manifest("img", dists, python="3.11.7", platforms=["manylinux_2_17_x86_64"])
    (configs / "images" / "img.json").write_text(json.dumps(image))
    (tmp_path / "requirements.in").write_text("app\n")
    (tmp_path / "requirements-symb.in").write_text("solver\n")
    return tmp_path


def lock(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    args = ["lock", "--json", "--config-dir", str(project / "configs")]
    args += [a for a in extra if a.startswith("--")]
    args += [
        "target.image=img",
        f"bundle.index_url={index.simple_url}",
        f"bundle.cache_dir={project / 'cache'}",
    ]
    args += [a for a in extra if not a.startswith("--")]
    code = main(args)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extra_lock_holds_what_it_adds_at_the_base_locks_versions(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lock(project, index, capsys)[0] == 0
    base = project / "requirements.lock"
    before = base.read_bytes()
    code, data, err = lock(project, index, capsys, "bundle.extras=[symb]")
    assert code == 0, err
    assert base.read_bytes() == before and data["written"] is False  # an up-to-date base is kept
    [extra] = data["extras"]
    # solver 2.0 is newest, but needs light>=2 and the base lock pins light 1.0: versions agree.
    assert extra["pins"] == [{"name": "mp", "version": "1.0"}, {"name": "solver", "version": "1.0"}]
    extra_lock = parse_lock(project / "requirements-symb.lock")
    assert [p.key for p in extra_lock.pins] == ["mp==1.0", "solver==1.0"]  # no light: the base has it
    header = extra_lock.header
    assert header is not None and header.extra == "symb" and header.base_lock_sha256 == sha(base)
    assert header.requirements_in_sha256 == sha(project / "requirements-symb.in")
    text = (project / "requirements-symb.lock").read_text()
    assert "# via -r requirements-symb.in" in text and str(project) not in text
    assert lock(project, index, capsys, "--check", "bundle.extras=[symb]")[0] == 0


def test_locking_an_extra_relocks_a_stale_base_first(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "requirements.in").write_text("app\nlight>=2\n")  # no base lock yet, and light moves
    code, data, err = lock(project, index, capsys, "bundle.extras=[symb]")
    assert code == 0, err
    assert data["written"] is True and {"name": "light", "version": "2.0"} in data["pins"]
    assert data["extras"][0]["pins"] == [
        {"name": "mp", "version": "1.0"},
        {"name": "solver", "version": "2.0"},
    ]
    header = parse_lock(project / "requirements-symb.lock").header
    assert header is not None and header.base_lock_sha256 == sha(project / "requirements.lock")


def test_stale_and_missing_extra_locks_name_the_command_that_fixes_them(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lock(project, index, capsys)[0] == 0
    code, data, _ = lock(project, index, capsys, "--check", "bundle.extras=[symb]")
    assert code == 1 and "lock of extra 'symb' does not exist" in data["what"]
    assert "python -m bundler lock bundle.extras=[symb]" in data["fix"]

    assert lock(project, index, capsys, "bundle.extras=[symb]")[0] == 0
    (project / "requirements-symb.in").write_text("solver\nmp\n")
    code, data, _ = lock(project, index, capsys, "--check", "bundle.extras=[symb]")
    assert code == 1 and "lock out of date: requirements-symb.in changed" in data["what"]
    assert "python -m bundler lock bundle.extras=[symb]" in data["fix"]

    assert lock(project, index, capsys, "bundle.extras=[symb]")[0] == 0
    (project / "requirements.in").write_text("app\nheavy\n")
    assert lock(project, index, capsys)[0] == 0  # the base alone is re-locked: the extra is dated
    code, data, _ = lock(project, index, capsys, "--check", "bundle.extras=[symb]")
    assert code == 1 and "extra 'symb' was locked against another requirements.lock" in data["what"]
    assert data["where"].endswith("requirements-symb.lock:1")


def test_unknown_extra_lists_the_known_ones(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "requirements-tracking.in").write_text("mp\n")
    code, data, _ = lock(project, index, capsys, "bundle.extras=[symb,nope]")
    assert code == 2 and data["what"] == "unknown extra: nope (known: symb, tracking)"
    assert not (project / "requirements.lock").exists()  # nothing is resolved before the names check


def test_extra_that_conflicts_with_the_base_lock_keeps_the_old_extra_lock(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lock(project, index, capsys, "bundle.extras=[symb]")[0] == 0
    old = (project / "requirements-symb.lock").read_bytes()
    (project / "requirements-symb.in").write_text("solver>=2\n")  # needs light>=2; the base pins 1.0
    code, data, _ = lock(project, index, capsys, "bundle.extras=[symb]")
    assert code == 1 and "cannot be resolved" in data["what"] and "light" in data["what"]
    assert data["where"].endswith("requirements-symb.in")
    assert (project / "requirements-symb.lock").read_bytes() == old


@pytest.mark.network
def test_real_symbolic_extra_locks_z3_for_the_target_against_the_committed_base(
    tmp_path: Path, repo: Path
) -> None:
    """PyPI, metadata only: the committed base lock is kept, sympy and mpmath come from it (torch's),
    the extra adds z3-solver with the hash of a wheel the target can install."""
    shutil.copytree(repo / "configs", tmp_path / "configs")
    for name in ("requirements.in", "requirements.lock", "requirements-symbolic.in"):
        shutil.copy(repo / name, tmp_path / name)
    overrides = [f"bundle.cache_dir={tmp_path / 'cache'}", "bundle.extras=[symbolic]"]
    assert main(["lock", "--config-dir", str(tmp_path / "configs"), *overrides]) == 0
    assert (tmp_path / "requirements.lock").read_bytes() == (repo / "requirements.lock").read_bytes()
    pins = {p.name: p for p in parse_lock(tmp_path / "requirements-symbolic.lock").pins}
    base = {p.name: p.version for p in parse_lock(repo / "requirements.lock").pins}
    assert "z3-solver" in pins and {"sympy", "mpmath"} <= set(base) and not {"sympy", "mpmath"} & set(pins)
    z3 = pins["z3-solver"]
    settings = load(["bundle.extras=[symbolic]"], str(tmp_path / "configs"))
    chosen = pick_file(z3, IndexClient(PYPI).project_files("z3-solver"), target_tags(settings.target), "z3")
    assert chosen.filename.endswith("_x86_64.whl") and "manylinux" in chosen.filename
    assert chosen.sha256 in z3.hashes
