"""A wheel's own contents (filename, METADATA, WHEEL, RECORD) are checked against the lock before packing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bundler.errors import VerificationError
from bundler.wheelcheck import check_wheel
from tests.support.index import serve_index
from tests.support.wheels import make_wheel, rewrite_wheel, sha256_file
from tests.test_wheelhouse import Project, make_project, write_lock

LINUX = "manylinux_2_17_x86_64.manylinux2014_x86_64"


def _refused(wheel: Path, *, name: str = "tiny", version: str = "1.0") -> str:
    with pytest.raises(VerificationError) as info:
        check_wheel(wheel, name=name, version=version)
    assert info.value.exit_code == 3 and info.value.where == str(wheel)
    assert wheel.name in info.value.what
    return info.value.what


def test_consistent_wheels_pass(tmp_path: Path) -> None:
    check_wheel(make_wheel(tmp_path, "tiny", "1.0"), name="tiny", version="1.0")
    check_wheel(
        make_wheel(tmp_path, "Tiny_Plat", "2.0.0", tag=f"cp311-cp311-{LINUX}"),
        name="tiny-plat",
        version="2.0",
    )


def test_wheel_whose_metadata_says_another_version_is_refused(tmp_path: Path) -> None:
    wheel = rewrite_wheel(
        make_wheel(tmp_path, "tiny", "1.0"),
        lambda f: f.update(
            {"tiny-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tiny\nVersion: 1.1\n"}
        ),
    )
    what = _refused(wheel)
    assert "METADATA Version is '1.1', expected '1.0'" in what


def test_wheel_whose_metadata_names_another_project_is_refused(tmp_path: Path) -> None:
    wheel = rewrite_wheel(
        make_wheel(tmp_path, "tiny", "1.0"),
        lambda f: f.update(
            {"tiny-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n"}
        ),
    )
    assert "METADATA Name is 'other', expected 'tiny'" in _refused(wheel)


def test_member_whose_bytes_do_not_match_record_is_refused(tmp_path: Path) -> None:
    wheel = rewrite_wheel(
        make_wheel(tmp_path, "tiny", "1.0"), lambda f: f.update({"tiny/__init__.py": b"evil = 1\n"})
    )
    what = _refused(wheel)
    assert "sha256 of tiny/__init__.py (RECORD)" in what


def test_member_missing_from_record_is_refused(tmp_path: Path) -> None:
    wheel = rewrite_wheel(
        make_wheel(tmp_path, "tiny", "1.0"), lambda f: f.update({"tiny/extra.py": b"x = 1\n"})
    )
    assert "RECORD entry of tiny/extra.py is 'missing'" in _refused(wheel)


def test_record_entry_whose_member_is_gone_is_refused(tmp_path: Path) -> None:
    wheel = rewrite_wheel(make_wheel(tmp_path, "tiny", "1.0"), lambda f: f.pop("tiny/__init__.py"))
    assert "member tiny/__init__.py listed in RECORD is 'missing'" in _refused(wheel)


def test_wheel_tags_that_differ_from_the_filename_are_refused(tmp_path: Path) -> None:
    linux = make_wheel(tmp_path / "a", "tiny", "1.0", tag=f"cp311-cp311-{LINUX}")
    mac = make_wheel(tmp_path / "b", "tiny", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    renamed = tmp_path / linux.name
    shutil.copy(mac, renamed)  # a mac wheel renamed to look like a linux one
    what = _refused(renamed)
    assert "WHEEL Tag is 'cp311-cp311-macosx_11_0_arm64'" in what and "manylinux2014_x86_64" in what


def _relabel(wheel: Path, tag: str) -> Path:
    """``wheel`` with its WHEEL Tag line replaced (RECORD kept consistent)."""

    def edit(files: dict[str, bytes]) -> None:
        [name] = [n for n in files if n.endswith(".dist-info/WHEEL")]
        lines = [ln for ln in files[name].decode().splitlines() if not ln.startswith("Tag:")]
        files[name] = ("\n".join([*lines, f"Tag: {tag}"]) + "\n").encode()

    return rewrite_wheel(wheel, edit, record=True)


@pytest.mark.parametrize(
    ("named", "declared"),
    [
        ("py2.py3-none-manylinux_2_17_x86_64", "py3-none-manylinux_2_17_x86_64"),  # as py-spy ships
        ("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-linux_x86_64"),  # renamed by a repair tool
        ("py3-none-manylinux1_x86_64", "py3-none-any"),  # as playwright ships
    ],
)
def test_loosely_labelled_published_wheels_pass(tmp_path: Path, named: str, declared: str) -> None:
    """Tags are compared by ABI, OS family and architecture: PyPI's loose labels are not refused."""
    check_wheel(
        _relabel(make_wheel(tmp_path, "tiny", "1.0", tag=named), declared), name="tiny", version="1.0"
    )


@pytest.mark.parametrize(
    ("named", "declared"),
    [
        (f"cp311-cp311-{LINUX}", "cp311-cp311-musllinux_1_2_x86_64"),  # musl is not glibc
        (f"cp311-cp311-{LINUX}", "cp311-cp311-manylinux_2_17_aarch64"),  # another CPU
        (f"cp311-cp311-{LINUX}", "cp312-cp312-manylinux_2_17_x86_64"),  # another ABI
        ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64"),  # a binary named as pure Python
    ],
)
def test_wheel_tags_for_another_abi_or_platform_are_refused(
    tmp_path: Path, named: str, declared: str
) -> None:
    wheel = _relabel(make_wheel(tmp_path, "tiny", "1.0", tag=named), declared)
    assert f"WHEEL Tag is '{declared}'" in _refused(wheel)


def test_hex_record_hashes_are_accepted(tmp_path: Path) -> None:
    """A few published wheels (gmsh) write RECORD's sha256 in hex instead of base64."""

    def hexify(files: dict[str, bytes]) -> None:
        record = "tiny-1.0.dist-info/RECORD"
        rows = []
        for row in files[record].decode().splitlines():
            path, digest, size = row.split(",")
            if digest:
                digest = "sha256=" + hashlib.sha256(files[path]).hexdigest()
            rows.append(f"{path},{digest},{size}")
        files[record] = ("\n".join(rows) + "\n").encode()

    check_wheel(rewrite_wheel(make_wheel(tmp_path, "tiny", "1.0"), hexify), name="tiny", version="1.0")


def test_filename_that_differs_from_the_lock_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tiny", "1.0")
    assert "the filename's version is '1.0', expected '2.0'" in _refused(wheel, version="2.0")
    assert "the filename's name is 'tiny', expected 'other'" in _refused(wheel, name="other")


def test_truncated_wheel_is_a_verification_error_not_a_traceback(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tiny", "1.0")
    wheel.write_bytes(wheel.read_bytes()[:100])
    assert "not a readable wheel" in _refused(wheel)


def test_wheelhouse_refuses_a_locked_wheel_whose_contents_disagree(tmp_path: Path) -> None:
    project: Project = make_project(tmp_path)
    good = make_wheel(project.files, "tinypure", "1.0")
    bad = rewrite_wheel(
        make_wheel(project.files, "tinybad", "1.0"),
        lambda f: f.update(
            {"tinybad-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinybad\nVersion: 9\n"}
        ),
    )
    write_lock(
        project, [("tinypure", "1.0", [good]), ("tinybad", "1.0", [bad])]
    )  # the lock hashes the bad file
    with serve_index(project.files) as index, pytest.raises(VerificationError) as info:
        project.build(index.simple_url)
    assert f"wheel {bad.name}: METADATA Version is '9', expected '1.0'" in info.value.what
    assert not project.dest.exists()  # nothing packed


def test_a_wheel_is_checked_once_then_remembered_by_its_hash(tmp_path: Path) -> None:
    """Checking reads every member (seconds for a big wheel): a warm rebuild reuses the verdict."""
    project = make_project(tmp_path)
    good = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [good])])
    with serve_index(project.files) as index:
        project.build(index.simple_url)
    [choice] = (project.root / "cache" / "choices").iterdir()
    assert json.loads(choice.read_text())["checked"] == sha256_file(good)
