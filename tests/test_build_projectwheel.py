"""The project's own wheel: PyPA build (sdist -> wheel), isolated, reproducible, cached."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from bundler.errors import BundlerError, VerificationError
from bundler.projectwheel import ProjectWheel, build_deps_dir, build_project_wheel, build_requires
from tests import test_build as tb
from tests.support.index import serve_index
from tests.support.wheels import rewrite_wheel, sha256_file

setuptools_whl, shared_cache = tb.setuptools_whl, tb.shared_cache
DEAD_INDEX = "http://127.0.0.1:9/simple"


def _project(base: Path, setuptools: Path) -> tb.TinyProject:
    return tb.make_tiny_project(base, setuptools, name="p")


@pytest.mark.slow  # two isolated builds from scratch (~20 s on the 2-core machine)
def test_same_sources_in_two_places_give_the_same_wheel_bytes(
    tmp_path: Path, setuptools_whl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine's pip settings must not leak into the isolated build.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/nowhere")
    monkeypatch.setenv("PIP_CONSTRAINT", str(tmp_path / "no-such-constraints.txt"))
    project = _project(tmp_path / "a", setuptools_whl)
    other_src = tmp_path / "b" / "deeper" / "src"
    shutil.copytree(project.root / "src", other_src)
    wheels = [
        build_project_wheel(src, tmp_path / f"out{i}", cache_dir=project.cache, index_url=DEAD_INDEX,
                            epoch=1700000000, offline=True, use_cache=False)
        for i, src in enumerate([project.root / "src", other_src])
    ]  # fmt: skip
    assert wheels[0].sha256 == wheels[1].sha256 and not wheels[0].cached
    assert wheels[0].filename == "spectramind-0.0.1-py3-none-any.whl"
    data = (tmp_path / "out0" / wheels[0].filename).read_bytes()
    assert data == (tmp_path / "out1" / wheels[1].filename).read_bytes()
    with zipfile.ZipFile(tmp_path / "out0" / wheels[0].filename) as zf:
        names = zf.namelist()
        assert "spectramind/shim/main.py" in names and zf.getinfo(names[0]).date_time[:3] == (2023, 11, 14)
        assert not any(str(tmp_path) in zf.read(n).decode("utf-8", "replace") for n in names)
    # The build ran on a copy: no egg-info or build/ left in the project.
    assert sorted(p.name for p in (project.root / "src").iterdir()) == ["pyproject.toml", "spectramind"]


def test_cache_reuses_the_wheel_and_a_source_change_rebuilds(
    tmp_path: Path, setuptools_whl: Path, shared_cache: Path
) -> None:
    project = tb.make_tiny_project(tmp_path, setuptools_whl, name="p", cache=shared_cache)
    src = project.root / "src"

    def build(dest: str) -> ProjectWheel:
        return build_project_wheel(
            src,
            tmp_path / dest,
            cache_dir=shared_cache,
            index_url=DEAD_INDEX,
            epoch=tb.GIT_EPOCH,
            offline=True,
        )

    first, again = build("o1"), build("o2")
    assert again.cached and again.sha256 == first.sha256
    (src / "spectramind" / "__init__.py").write_text('"""changed"""\n')
    changed = build("o3")
    assert not changed.cached and changed.sha256 != first.sha256


def test_offline_without_build_requirements_is_a_clear_error(tmp_path: Path, setuptools_whl: Path) -> None:
    project = _project(tmp_path, setuptools_whl)
    with pytest.raises(BundlerError) as info:
        build_project_wheel(project.root / "src", tmp_path / "o", cache_dir=tmp_path / "empty-cache",
                            index_url=DEAD_INDEX, epoch=1, offline=True)  # fmt: skip
    assert "build requirements" in info.value.what and "setuptools>=68" in info.value.what
    assert info.value.fix is not None and "without --offline" in info.value.fix


def _build_shared(tmp_path: Path, setuptools_whl: Path, cache: Path, dest: str) -> tuple[ProjectWheel, Path]:
    project = tb.make_tiny_project(tmp_path, setuptools_whl, name="p", cache=cache)
    wheel = build_project_wheel(
        project.root / "src",
        tmp_path / dest,
        cache_dir=cache,
        index_url=DEAD_INDEX,
        epoch=tb.GIT_EPOCH,
        offline=True,
    )
    entries = [p.parent for p in (cache / "project-wheels").glob("*/entry.json")]
    [entry] = [e for e in entries if json.loads((e / "entry.json").read_text())["sha256"] == wheel.sha256]
    return wheel, entry


@pytest.mark.parametrize("damage", ["corrupt", "modified"])
def test_corrupt_cached_project_wheel_is_rebuilt(
    tmp_path: Path, setuptools_whl: Path, shared_cache: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated cached wheel (once a raw BadZipFile) or a valid but modified one (once packed
    silently) no longer matches the sha256 recorded when the entry was made: it is rebuilt."""
    first, entry = _build_shared(tmp_path, setuptools_whl, shared_cache, "o1")
    cached = entry / first.filename
    if damage == "corrupt":
        cached.write_bytes(cached.read_bytes()[:300])
    else:
        rewrite_wheel(cached, lambda f: f.update({"spectramind/__init__.py": b"import os\n"}))
    capsys.readouterr()
    src = tmp_path / "p" / "src"
    again = build_project_wheel(
        src, tmp_path / "o2", cache_dir=shared_cache, index_url=DEAD_INDEX, epoch=tb.GIT_EPOCH, offline=True
    )
    err = capsys.readouterr().err
    assert f"warning: cache entry {entry} is damaged" in err and "rebuilding the project wheel" in err
    assert not again.cached and again.sha256 == first.sha256  # the real wheel, not the damaged one
    assert (tmp_path / "o2" / again.filename).read_bytes() == (tmp_path / "o1" / first.filename).read_bytes()
    assert sha256_file(entry / first.filename) == first.sha256  # the entry is whole again


def test_damaged_build_requirements_cache_is_refused_offline(tmp_path: Path, setuptools_whl: Path) -> None:
    project = _project(tmp_path, setuptools_whl)
    requires = build_requires(project.root / "src")
    folder = build_deps_dir(project.cache, requires, index_url=DEAD_INDEX, offline=True)
    [wheel] = folder.glob("*.whl")
    recorded = sha256_file(wheel)  # seeded by hand: recorded on first use
    with wheel.open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(VerificationError) as info:
        build_deps_dir(project.cache, requires, index_url=DEAD_INDEX, offline=True)
    assert info.value.where == str(folder) and info.value.exit_code == 3
    assert (
        recorded in info.value.what
        and sha256_file(wheel) in info.value.what
        and wheel.name in info.value.what
    )
    # Online, the damaged folder is filled again from the index.
    served = tmp_path / "index"
    served.mkdir()
    shutil.copy(setuptools_whl, served)
    with serve_index(served) as index:
        again = build_deps_dir(project.cache, requires, index_url=index.simple_url, offline=False)
    assert again == folder and sha256_file(folder / wheel.name) == recorded
