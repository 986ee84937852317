"""The wheelhouse cache is checked on use: hand-edited lock hashes, damaged files, tampered choices.

A hand-edited hash in requirements.lock is named as such by `build --offline` and `lock --check`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bundler.cli import main
from bundler.errors import BundlerError, VerificationError
from tests.support.index import serve_index
from tests.support.wheels import make_wheel, sha256_file
from tests.test_wheelhouse import Project, make_project, write_lock


def _lock_check(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(
        ["lock", "--json", "--check", "--config-dir", str(project.configs), "target.image=tiny-img",
         f"bundle.cache_dir={project.root / 'cache'}"]
    )  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def fetched(tmp_path: Path) -> tuple[Project, Path]:
    """A project whose lock pins tinypure (fetched once into the cache) and numpy (the image's)."""
    project = make_project(tmp_path, [{"name": "numpy", "version": "2.1.3", "requires_dist": []}])
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("numpy", "2.1.3", ["a" * 64]), ("tinypure", "1.0", [pure])])
    with serve_index(project.files) as index:
        project.build(index.simple_url)
    shutil.rmtree(project.dest)
    return project, pure


def _edit_hash(project: Project, old: str) -> str:
    new = "f" * 64
    project.lock.write_text(project.lock.read_text().replace(old, new))
    return new


def test_hand_edited_lock_hash_is_named_by_offline_build(fetched: tuple[Project, Path]) -> None:
    project, pure = fetched
    real = sha256_file(pure)
    edited = _edit_hash(project, real)
    with pytest.raises(VerificationError) as info:
        project.build(offline=True)
    what = info.value.what
    assert "never fetched" not in what
    assert f"tinypure==1.0: the lock's sha256 {edited} does not match the cached file" in what
    assert f"{pure.name} has sha256 {real}" in what and "requirements.lock:" in what
    assert "re-lock" in (info.value.fix or "") and info.value.exit_code == 3
    assert not project.dest.exists()
    # A pin that was really never fetched (no file of it in the cache) is still reported as missing.
    write_lock(project, [("tinypure", "1.0", [pure]), ("tinyother", "2.0", ["b" * 64])])
    with pytest.raises(BundlerError, match=r"tinyother==2\.0 \(never fetched for this target\)"):
        project.build(offline=True)


def test_lock_check_checks_hashes_against_the_cache(
    fetched: tuple[Project, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, pure = fetched
    code, data = _lock_check(project, capsys)
    assert code == 0 and data["up_to_date"] is True, data
    assert data["hashes_checked"] == ["tinypure==1.0"]
    assert data["hashes_unchecked"] == ["numpy==2.1.3"]  # the image has it: never fetched here

    edited = _edit_hash(project, sha256_file(pure))
    code, data = _lock_check(project, capsys)
    assert code == 3 and data["error"] == "VerificationError", data
    assert f"the lock's sha256 {edited} does not match the cached file" in data["what"]
    assert sha256_file(pure) in data["what"] and data["where"] == str(project.lock)


def test_tampered_cache_choice_is_not_trusted(fetched: tuple[Project, Path]) -> None:
    """A remembered pin -> file choice pointing at a file the lock does not allow is ignored."""
    project, pure = fetched
    other = make_wheel(project.root / "elsewhere", "tinypure", "1.0", module_code="evil = 1\n")
    blob = project.root / "cache" / "sha256" / sha256_file(other)[:2] / sha256_file(other) / other.name
    blob.parent.mkdir(parents=True)
    shutil.copy(other, blob)
    [choice] = (project.root / "cache" / "choices").iterdir()
    choice.write_text(choice.read_text().replace(sha256_file(pure), sha256_file(other)))
    with pytest.raises(VerificationError, match=f"{other.name} has sha256 {sha256_file(other)}"):
        project.build(offline=True)  # the choice is not used: the file it names is not the lock's
    assert not project.dest.exists()
    with serve_index(project.files) as index:
        result = project.build(index.simple_url)
    assert result.wheels[0].sha256 == sha256_file(pure)


def test_corrupt_cached_download_is_named_and_fetched_again(
    fetched: tuple[Project, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, pure = fetched
    blob = next((project.root / "cache" / "sha256").rglob("*.whl"))
    blob.write_bytes(blob.read_bytes()[:-10])
    capsys.readouterr()
    with pytest.raises(BundlerError, match=r"missing from the cache: tinypure==1\.0"):
        project.build(offline=True)
    err = capsys.readouterr().err
    assert f"cache entry {blob} is damaged" in err and f"recorded {sha256_file(pure)}" in err
    with serve_index(project.files) as index:
        assert project.build(index.simple_url).wheels[0].origin == "downloaded"
    assert sha256_file(blob) == sha256_file(pure)
