"""The wheelhouse with ``bundle.extras``: each extra's pins join the base's, once each, versions agreeing.

Extra locks are written by hand here (the lock command's own output is tested in test_lock_extras).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from bundler.errors import BundlerError
from tests.support.index import serve_index
from tests.support.wheels import make_wheel, sha256_file
from tests.test_wheelhouse import Project, make_project, names, write_lock


def write_extra_lock(project: Project, extra: str, pins: Sequence[tuple[str, str, Path]]) -> Path:
    """requirements-EXTRA.in listing ``pins`` and its lock against the project's base lock."""
    req = project.root / f"requirements-{extra}.in"
    req.write_text("".join(f"{name}\n" for name, _, _ in pins))
    base = project.lock.read_text().splitlines()[0]
    base_sha = hashlib.sha256(project.lock.read_bytes()).hexdigest()
    header = base.replace(sha256_file(project.root / "requirements.in"), sha256_file(req))
    lines = [f"{header} extra={extra} base-lock-sha256={base_sha}"]
    for name, version, wheel in pins:
        lines += [
            f"{name}=={version} \\",
            f"    --hash=sha256:{sha256_file(wheel)}",
            f"    # via -r {req.name}",
        ]
    path = project.root / f"requirements-{extra}.lock"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    write_lock(project, [("tiny", "1.0", [make_wheel(project.files, "tiny", "1.0")])])
    return project


def test_two_extras_share_a_package_once_and_each_lists_what_it_brings(project: Project) -> None:
    shared = make_wheel(project.files, "shared", "1.0")
    a = write_extra_lock(
        project, "a", [("alpha", "1.0", make_wheel(project.files, "alpha", "1.0")), ("shared", "1.0", shared)]
    )
    write_extra_lock(project, "b", [("shared", "1.0", shared)])
    with serve_index(project.files) as index:
        plain = project.build(index.simple_url)
        assert names(plain) == ["tiny-1.0-py3-none-any.whl"] and plain.extras == []
        result = project.build(index.simple_url, "bundle.extras=[b,a]")
    assert names(result) == [
        "alpha-1.0-py3-none-any.whl",
        "shared-1.0-py3-none-any.whl",
        "tiny-1.0-py3-none-any.whl",
    ]
    assert [(e["name"], e["lock"], [p["name"] for p in e["packages"]]) for e in result.extras] == [
        ("a", "requirements-a.lock", ["alpha", "shared"]),
        ("b", "requirements-b.lock", ["shared"]),
    ]
    assert result.extras[0]["lock_sha256"] == sha256_file(a)


def test_extras_that_disagree_on_a_version_are_refused(project: Project) -> None:
    write_extra_lock(project, "a", [("shared", "1.0", make_wheel(project.files, "shared", "1.0"))])
    write_extra_lock(project, "b", [("shared", "2.0", make_wheel(project.files, "shared", "2.0"))])
    with pytest.raises(
        BundlerError,
        match=r"shared is pinned twice for the target \(1.0 at .*requirements-a.lock:2 and 2.0\)",
    ) as info:
        project.build("http://127.0.0.1:9/simple", "bundle.extras=[a,b]")
    assert info.value.where is not None and info.value.where.endswith("requirements-b.lock:2")
    assert "python -m bundler lock bundle.extras=[a,b]" in str(info.value.fix)
    assert not project.dest.exists()


def test_an_extra_lock_of_another_base_lock_is_refused(project: Project) -> None:
    write_extra_lock(project, "a", [("alpha", "1.0", make_wheel(project.files, "alpha", "1.0"))])
    write_lock(project, [("tiny", "1.0", ["b" * 64])])  # the base is re-locked afterwards
    with pytest.raises(BundlerError, match=r"extra 'a' was locked against another requirements\.lock"):
        project.build("http://127.0.0.1:9/simple", "bundle.extras=[a]")
