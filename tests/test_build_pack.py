"""bundler.pack on its own: publish/exchange, stale stages, limits, path and symlink checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import pack
from bundler.config import Limits
from bundler.errors import UsageError, VerificationError


def _bundle(path: Path, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "MANIFEST.json").write_text("{}")
    (path / "marker").write_text(marker)
    return path


def test_publish_swaps_atomically_and_drops_the_old_bundle(tmp_path: Path) -> None:
    out = _bundle(tmp_path / "dist" / "bundle", "old")
    stage = pack.new_stage(out)
    (stage / "marker").write_text("new")
    (stage / "MANIFEST.json").write_text("{}")
    pack.publish(stage, out)
    assert (out / "marker").read_text() == "new"
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle"]


def test_publish_into_a_new_or_empty_directory(tmp_path: Path) -> None:
    for out in (tmp_path / "fresh" / "bundle", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        stage = pack.new_stage(out)
        (stage / "f").write_text("x")
        pack.publish(stage, out)
        assert (out / "f").read_text() == "x"


def test_publish_refuses_files_links_and_foreign_directories(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(_bundle(tmp_path / "real", "r"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("keep")
    for out in (tmp_path / "file", tmp_path / "link", tmp_path / "docs"):
        stage = pack.new_stage(out)
        with pytest.raises(UsageError, match="not a bundle"):
            pack.publish(stage, out)
    assert (tmp_path / "docs" / "a.md").read_text() == "keep"


def test_stale_stages_of_dead_builds_are_removed_and_a_retired_bundle_restored(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (tmp_path / f".bundle.staging-{dead}-abc").mkdir()
    (tmp_path / f".bundle.staging-{os.getpid()}-live").mkdir()  # a running build: kept
    _bundle(tmp_path / f".bundle.retired-{dead}-123", "old")  # killed between the two renames
    pack.remove_stale(out)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f".bundle.staging-{os.getpid()}-live", "bundle"]
    assert (out / "marker").read_text() == "old"


def test_limits_count_top_level_entries_and_bytes(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"x" * 1000)
    used = pack.check_limits(tmp_path, Limits(max_top_level_entries=4, max_total_bytes=10**6))
    assert used.top_level == ("a", "b", "c") and used.files == 3 and used.bytes == 3000
    with pytest.raises(VerificationError, match="4 top-level entries; the limit is 3"):
        pack.check_limits(tmp_path, Limits(max_top_level_entries=3, max_total_bytes=10**6))
    with pytest.raises(VerificationError, match="the limit is 2,000"):
        pack.check_limits(tmp_path, Limits(max_top_level_entries=10, max_total_bytes=2000))


def test_build_paths_match_whole_components_only(tmp_path: Path) -> None:
    pack.check_text_for_paths("x: /application/y\n", ["/app"], where="f")
    for text, line in (("a\nroot: /app/data\n", 2), ('"/app"\n', 1), ("see /app.\n", 0)):
        if not line:
            pack.check_text_for_paths(text, ["/app"], where="f")  # "." ends a sentence, not a name
            continue
        with pytest.raises(VerificationError) as info:
            pack.check_text_for_paths(text, ["/app"], where="f")
        assert info.value.where == f"f:{line} (mentions /app)"
    (tmp_path / "blob.bin").write_bytes(b"\0" + b"/app/x")  # binary files are not text-checked
    pack.check_no_build_paths(tmp_path, ["/app"])


def test_copy_tree_skips_junk_and_normalises_modes(tmp_path: Path) -> None:
    src = tmp_path / "proj" / "configs"
    (src / "__pycache__").mkdir(parents=True)
    (src / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (src / "run.sh").write_text("echo\n")
    (src / "run.sh").chmod(0o700)
    (src / "a.yaml").write_text("a: 1\n")
    (src / "a.yaml").chmod(0o600)
    copied = pack.copy_tree(src, tmp_path / "stage", project_root=tmp_path / "proj")
    assert copied == ["a.yaml", "run.sh"]
    assert (tmp_path / "stage" / "a.yaml").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "stage" / "run.sh").stat().st_mode & 0o777 == 0o755


def test_symlink_loops_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "proj" / "configs"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "back").symlink_to(src)
    with pytest.raises(VerificationError, match="loops back"):
        pack.copy_tree(src, tmp_path / "stage", project_root=tmp_path / "proj")
