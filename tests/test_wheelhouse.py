"""The target-platform wheelhouse, offline: tiny wheels on a local index on 127.0.0.1.

Helpers here (`Project`, `make_project`, `write_lock`) are reused by the other wheelhouse tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundler.config import Settings, load
from bundler.errors import BundlerError, UsageError, VerificationError
from bundler.wheelhouse import WheelhouseResult, build_wheelhouse
from tests.support.images import image_manifest
from tests.support.index import serve_index
from tests.support.wheels import make_sdist, make_wheel, sha256_file

REPO = Path(__file__).resolve().parent.parent
IMAGE = "tiny-img"
LINUX = "manylinux_2_17_x86_64.manylinux2014_x86_64"


@dataclass
class Project:
    root: Path
    files: Path  # what the local index serves
    lock: Path
    dest: Path

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    def settings(self, index_url: str = "http://127.0.0.1:9/simple", *extra: str) -> Settings:
        return load(
            [
                f"target.image={IMAGE}",
                f"bundle.index_url={index_url}",
                f"bundle.cache_dir={self.root / 'cache'}",
                *extra,
            ],
            config_dir=str(self.configs),
        )

    def build(
        self, index_url: str = "http://127.0.0.1:9/simple", *extra: str, **kw: bool
    ) -> WheelhouseResult:
        return build_wheelhouse(self.settings(index_url, *extra), lock=self.lock, dest=self.dest, **kw)


def make_project(tmp_path: Path, image_dists: Sequence[dict[str, object]] = ()) -> Project:
    """A tmp project: a copy of configs/ plus a tiny image manifest, requirements.in, empty index."""
    root = tmp_path / "proj"
    shutil.copytree(REPO / "configs", root / "configs", ignore=shutil.ignore_patterns("images"))
    (root / "configs" / "images").mkdir()
    image = image_manifest(IMAGE, image_dists)
    (root / "configs" / "images" / f"{IMAGE}.json").write_text(json.dumps(image))
    (root / "requirements.in").write_text("tiny\n")
    files = tmp_path / "index"
    files.mkdir()
    return Project(
        root=root, files=files, lock=root / "requirements.lock", dest=tmp_path / "bundle" / "wheels"
    )


def write_lock(
    project: Project,
    pins: Sequence[tuple[str, str, Sequence[Path | str]] | tuple[str, str, Sequence[Path | str], str]],
    *,
    target: str = "kaggle-sim-cp311",
    image: str = IMAGE,
) -> None:
    """A pip-tools lock: each pin is (name, version, files-or-hashes[, marker])."""
    req_sha = hashlib.sha256((project.root / "requirements.in").read_bytes()).hexdigest()
    image_sha = sha256_file(project.configs / "images" / f"{IMAGE}.json")
    lines = [
        f"# spectramind-lock: requirements-in-sha256={req_sha} target={target} image={image} "
        f"image-sha256={image_sha}",
        "#",
        "#    pip-compile --generate-hashes",
        "#",
    ]
    for pin in pins:
        name, version, sources = pin[0], pin[1], pin[2]
        marker = f" ; {pin[3]}" if len(pin) == 4 else ""
        lines.append(f"{name}=={version}{marker} \\")
        hashes = sorted(sha256_file(s) if isinstance(s, Path) else s for s in sources)
        for i, digest in enumerate(hashes):
            lines.append(f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else ""))
        lines.append("    # via -r requirements.in")
    project.lock.write_text("\n".join(lines) + "\n")


def platform_wheels(folder: Path, name: str, version: str) -> dict[str, Path]:
    """Wheels of one release for several interpreters/platforms, keyed by a short label."""
    tags = {
        "cp311-linux": f"cp311-cp311-{LINUX}",
        "cp311-too-new": "cp311-cp311-manylinux_2_39_x86_64",
        "cp312-linux": f"cp312-cp312-{LINUX}",
        "cp311-mac": "cp311-cp311-macosx_11_0_arm64",
        "cp311-win": "cp311-cp311-win_amd64",
    }
    return {label: make_wheel(folder, name, version, tag=tag) for label, tag in tags.items()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(
        tmp_path,
        image_dists=[{"name": "numpy", "version": "2.1.3", "requires_dist": []}],
    )


def names(result: WheelhouseResult) -> list[str]:
    return [w.filename for w in result.wheels]


def test_cold_then_warm_rebuild_makes_no_request(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0", requires=["numpy>=2"])
    plats = platform_wheels(project.files, "tinyplat", "2.0")
    write_lock(
        project,
        [
            ("numpy", "2.1.3", ["a" * 64]),
            ("tinypure", "1.0", [pure]),
            ("tinyplat", "2.0", list(plats.values())),
        ],
    )
    with serve_index(project.files) as index:
        cold = project.build(index.simple_url)
        cold_requests = list(index.requests)
    assert names(cold) == sorted([pure.name, plats["cp311-linux"].name])  # not 2_39 (> glibc 2.36), not cp312
    assert {w.origin for w in cold.wheels} == {"downloaded"}
    assert cold.skipped == [{"name": "numpy", "version": "2.1.3"}]
    assert cold.network_requests == len(cold_requests) == 4  # two index pages, two files
    assert sorted(p.name for p in project.dest.iterdir()) == names(cold)
    for record in cold.wheels:
        assert sha256_file(project.dest / record.filename) == record.sha256
        assert record.size == (project.dest / record.filename).stat().st_size
    assert cold.bytes_total == sum(w.size for w in cold.wheels)

    # Warm: the index is gone (a request would fail), and none is made.
    shutil.rmtree(project.dest)
    warm = project.build("http://127.0.0.1:9/simple")
    assert warm.network_requests == 0
    assert {w.origin for w in warm.wheels} == {"cache"}
    assert [(w.filename, w.sha256) for w in warm.wheels] == [(w.filename, w.sha256) for w in cold.wheels]


def test_cp312_target_picks_cp312_wheels_not_the_build_machine(project: Project) -> None:
    plats = platform_wheels(project.files, "tinyplat", "2.0")
    write_lock(project, [("tinyplat", "2.0", list(plats.values()))], target="kaggle-cp312")
    with serve_index(project.files) as index:
        result = project.build(index.simple_url, "target=kaggle-cp312", f"target.image={IMAGE}")
    assert names(result) == [plats["cp312-linux"].name]
    assert result.warnings == [
        f"target kaggle-cp312 is cp312 but image manifest {IMAGE} was captured on cp311: check target.image"
    ]


def test_abi3_and_pure_fallbacks_rank_below_exact_cpython(project: Project) -> None:
    abi3 = make_wheel(project.files, "tinyabi", "1.0", tag=f"cp38-abi3-{LINUX}")
    anyw = make_wheel(project.files, "tinyabi", "1.0", tag="py3-none-any")
    write_lock(project, [("tinyabi", "1.0", [abi3, anyw])])
    with serve_index(project.files) as index:
        result = project.build(index.simple_url)
    assert names(result) == [abi3.name]


def test_corrupted_cache_file_is_fetched_again_without_an_index_page(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [pure])])
    with serve_index(project.files) as index:
        project.build(index.simple_url)
        blob = next((project.root / "cache" / "sha256").rglob("*.whl"))
        blob.write_bytes(b"corrupted")
        index.requests.clear()
        shutil.rmtree(project.dest)
        again = project.build(index.simple_url)
        assert index.requests == [f"/files/{pure.name}"]
    assert again.wheels[0].origin == "downloaded"
    assert sha256_file(blob) == sha256_file(pure)


def test_a_remembered_url_that_is_gone_is_looked_up_again(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [pure])])
    with serve_index(project.files) as index:
        project.build(index.simple_url)
        [choice] = (project.root / "cache" / "choices").iterdir()
        choice.write_text(choice.read_text().replace("/files/", "/moved/"))
        shutil.rmtree(project.root / "cache" / "sha256")
        shutil.rmtree(project.dest)
        index.requests.clear()
        again = project.build(index.simple_url)
        assert index.requests == [f"/moved/{pure.name}", "/simple/tinypure/", f"/files/{pure.name}"]
    assert again.network_requests == 3
    assert names(again) == [pure.name]


def test_offline_names_what_is_missing_and_writes_nothing(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [pure])])
    with pytest.raises(BundlerError, match=r"--offline: 1 file\(s\) missing.*tinypure==1\.0") as info:
        project.build(offline=True)
    assert "without --offline" in (info.value.fix or "")
    assert not project.dest.exists()
    with serve_index(project.files) as index:
        project.build(index.simple_url)
    shutil.rmtree(project.dest)
    result = project.build(offline=True)
    assert result.network_requests == 0
    assert names(result) == [pure.name]
    # A corrupted cache file counts as missing offline (it is re-hashed, not trusted).
    next((project.root / "cache" / "sha256").rglob("*.whl")).write_bytes(b"bad")
    shutil.rmtree(project.dest)
    with pytest.raises(BundlerError, match=rf"missing from the cache: tinypure==1\.0 \({pure.name}\)"):
        project.build(offline=True)
    assert not project.dest.exists()


def test_no_wheel_for_the_target(project: Project) -> None:
    mac = make_wheel(project.files, "tinyplat", "2.0", tag="cp311-cp311-macosx_11_0_arm64")
    cp312 = make_wheel(project.files, "tinyplat", "2.0", tag=f"cp312-cp312-{LINUX}")
    write_lock(project, [("tinyplat", "2.0", [mac, cp312])])
    with serve_index(project.files) as index, pytest.raises(BundlerError) as info:
        project.build(index.simple_url)
    assert "no wheel of tinyplat==2.0 for the target kaggle-sim-cp311" in info.value.what
    assert "macosx_11_0_arm64" in info.value.what
    assert "requirements.lock:" in (info.value.where or "")
    assert not project.dest.exists()


def test_hash_mismatch_is_a_verification_error(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", ["0" * 64])])
    with serve_index(project.files) as index, pytest.raises(VerificationError, match="hash mismatch") as info:
        project.build(index.simple_url)
    assert sha256_file(pure) in info.value.what
    assert info.value.exit_code == 3
    assert not project.dest.exists()


def test_markers_leave_pins_out_and_uv_is_an_ordinary_pin(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    uv = make_wheel(project.files, "uv", "0.5.0", tag=f"py3-none-{LINUX}")
    old = make_wheel(project.files, "tomli", "2.0.1")
    write_lock(
        project,
        [
            ("tinypure", "1.0", [pure]),
            ("uv", "0.5.0", [uv]),
            ("tomli", "2.0.1", [old], 'python_version < "3.11"'),
        ],
    )
    with serve_index(project.files) as index:
        result = project.build(index.simple_url)
    assert names(result) == [pure.name, uv.name]  # a user's uv pin ships like any other package
    record = {r.filename: r for r in result.wheels}
    assert record[uv.name].sha256 == sha256_file(uv)  # the locked file as served, no repack


def test_lock_out_of_date_and_unknown_image(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [pure])])
    (project.root / "requirements.in").write_text("tiny\nrich\n")
    with pytest.raises(BundlerError, match="lock out of date") as info:
        project.build()
    assert str(project.lock) in (info.value.where or "")
    with pytest.raises(UsageError, match="unknown image manifest 'nope'") as unknown:
        project.build("http://127.0.0.1:9/simple", "target.image=nope")
    assert IMAGE in (unknown.value.fix or "")
    assert not project.dest.exists()


def test_lock_for_another_target_is_refused(project: Project) -> None:
    pure = make_wheel(project.files, "tinypure", "1.0")
    write_lock(project, [("tinypure", "1.0", [pure])], target="kaggle-cp312")
    with pytest.raises(BundlerError, match="resolved for target=kaggle-cp312"):
        project.build()


def test_pure_sdist_is_built_and_cached(project: Project) -> None:
    sdist = make_sdist(project.files, "tinysrc", "0.3")
    write_lock(project, [("tinysrc", "0.3", [sdist])])
    with serve_index(project.files) as index:
        cold = project.build(index.simple_url)
    assert [(w.filename, w.origin) for w in cold.built] == [("tinysrc-0.3-py3-none-any.whl", "built")]
    assert cold.wheels == cold.built
    assert cold.built[0].sha256 != sha256_file(sdist)  # the wheel's own hash, recorded by the bundle
    shutil.rmtree(project.dest)
    warm = project.build()  # no index, no rebuild: the built wheel comes from the cache
    assert warm.network_requests == 0
    assert warm.built == cold.built


def test_clobber_check_names_casualties_unless_allowed(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        image_dists=[
            {"name": "numpy", "version": "2.0.2", "requires_dist": []},
            {"name": "numba", "version": "0.60.0", "requires_dist": ["numpy<2.1,>=1.22", "llvmlite<0.44"]},
            {"name": "llvmlite", "version": "0.43.0", "requires_dist": []},
        ],
    )
    numpy = make_wheel(project.files, "numpy", "2.4.0", tag=f"cp311-cp311-{LINUX}")
    write_lock(project, [("numpy", "2.4.0", [numpy])])
    with serve_index(project.files) as index:
        with pytest.raises(BundlerError) as info:
            project.build(index.simple_url)
        assert "numba 0.60.0 requires numpy<2.1,>=1.22 but the bundle installs numpy 2.4.0" in info.value.what
        assert "--allow-clobber" in (info.value.fix or "")
        assert not project.dest.exists()
        allowed = project.build(index.simple_url, allow_clobber=True)
    assert names(allowed) == [numpy.name]
    assert allowed.warnings == [
        "clobber: numba 0.60.0 requires numpy<2.1,>=1.22 but the bundle installs numpy 2.4.0"
    ]


def test_target_tags_come_from_the_profile_not_this_interpreter(project: Project) -> None:
    from packaging.tags import Tag

    from bundler.tags import target_tags

    tags = target_tags(project.settings("http://127.0.0.1:9/simple", "target=kaggle-cp312").target)
    strs = [str(t) for t in tags.tags]
    assert strs[0] == "cp312-cp312-manylinux_2_35_x86_64"  # the newest glibc the profile lists first
    first_any = strs.index("py312-none-any")
    assert "py3-none-any" in strs[first_any:] and all(s.endswith("-any") for s in strs[first_any:])
    assert "cp311-abi3-manylinux2014_x86_64" in strs  # older abi3 wheels still load on 3.12
    assert not any(s.startswith("cp311-cp311") for s in strs)  # this machine's own ABI is not there
    assert not any(s.endswith(("-linux_x86_64", "manylinux_2_36_x86_64")) for s in strs)  # not listed
    assert tags.best_rank(frozenset({Tag("cp312", "cp312", "manylinux_2_36_x86_64")})) is None
