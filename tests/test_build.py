"""``python -m bundler build`` on a tiny project: layout, MANIFEST.json, byte-identical rebuilds.

The helpers here (`TinyProject`, `make_tiny_project`, `run_cli`) are reused by the other build,
verify, DVC and secrets tests. The tiny project is a git checkout holding a copy of configs/, a
tiny image manifest, a lock with one pin the image has (skipped) and one served by a local index,
a two-module run-side project under src/, a boot script, a kernel definition and weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bundler.cli import main as bundler_main
from bundler.projectwheel import build_requires
from tests.support.images import image_manifest
from tests.support.index import LocalIndex, serve_index
from tests.support.wheels import make_wheel, sha256_file

REPO = Path(__file__).resolve().parent.parent
IMAGE = "tiny-build-img"
NUMPY_HASH = "ab" * 32  # the image has numpy 2.1.3: the pin is skipped, its file never fetched
GIT_DATE = "2025-06-01T12:00:00+00:00"
GIT_EPOCH = 1748779200


def _git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def setuptools_wheel() -> Path:
    """A setuptools wheel for the isolated project build (local copy, else downloaded once)."""
    for folder in (Path("/opt/pypi/files"), Path.home() / ".cache" / "spectramind-tests"):
        found = sorted(folder.glob("setuptools-*-py3-none-any.whl"))
        if found:
            return found[-1]
    folder = Path.home() / ".cache" / "spectramind-tests"
    # No local copy (a fresh CI machine): fetch it once from PyPI, outside the test's network guard.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--only-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(folder),
            "--index-url",
            "https://pypi.org/simple",
            "setuptools>=68",
        ],
        env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        | {"PIP_CONFIG_FILE": os.devnull},
        check=True,
        capture_output=True,
    )
    return sorted(folder.glob("setuptools-*-py3-none-any.whl"))[-1]


@pytest.fixture(scope="session")
def setuptools_whl() -> Path:
    return setuptools_wheel()


@dataclass
class TinyProject:
    root: Path
    index_files: Path
    cache: Path
    index: LocalIndex | None = None
    extra: list[str] = field(default_factory=list)

    def overrides(self) -> list[str]:
        url = self.index.simple_url if self.index else "http://127.0.0.1:9/simple"
        return [
            f"target.image={IMAGE}",
            f"bundle.index_url={url}",
            f"bundle.cache_dir={self.cache}",
            *self.extra,
        ]

    def args(self, out: Path, *more: str) -> list[str]:
        return [
            "build",
            "--config-dir",
            str(self.root / "configs"),
            "--out",
            str(out),
            *more,
            *self.overrides(),
        ]

    def seed_build_deps(self, wheel: Path) -> None:
        key = hashlib.sha256("\n".join(build_requires(self.root / "src")).encode()).hexdigest()[:16]
        folder = self.cache / "build-deps" / key
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, folder)


def write_lock(root: Path, pins: list[tuple[str, str, str]]) -> None:
    req_sha = sha256_file(root / "requirements.in")
    image_sha = sha256_file(root / "configs" / "images" / f"{IMAGE}.json")
    lines = [
        f"# spectramind-lock: requirements-in-sha256={req_sha} target=kaggle-sim-cp311 image={IMAGE} "
        f"image-sha256={image_sha}",
    ]
    for name, version, digest in pins:
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{digest}", "    # via -r requirements.in"]
    (root / "requirements.lock").write_text("\n".join(lines) + "\n")


def make_tiny_project(
    base: Path, setuptools: Path, *, name: str = "proj", cache: Path | None = None
) -> TinyProject:
    """Create and commit the tiny project under ``base/name`` (see module doc).

    ``cache`` is the bundler cache (wheels, build requirements, built project wheels); tests share
    one per session so the project wheel is built once, except where a fresh build is the point.
    """
    root = base / name
    shutil.copytree(
        REPO / "configs", root / "configs", ignore=shutil.ignore_patterns("images", "__pycache__")
    )
    image = image_manifest(IMAGE, [{"name": "numpy", "version": "2.1.3", "requires_dist": []}])
    (root / "configs" / "images").mkdir()
    (root / "configs" / "images" / f"{IMAGE}.json").write_text(json.dumps(image, indent=1) + "\n")
    index_files = base / f"index-{name}"
    tiny = make_wheel(index_files, "tinydep", "1.0")
    (root / "requirements.in").write_text("numpy\ntinydep\n")
    write_lock(root, [("numpy", "2.1.3", NUMPY_HASH), ("tinydep", "1.0", sha256_file(tiny))])
    pkg = root / "src" / "spectramind"
    pkg.mkdir(parents=True)
    (root / "src" / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "spectramind"\nversion = "0.0.1"\nrequires-python = ">=3.11"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["."]\ninclude = ["spectramind*"]\n'
    )
    (pkg / "__init__.py").write_text('"""Tiny run-side package for bundler tests."""\n')
    shutil.copytree(
        REPO / "src" / "spectramind" / "shim", pkg / "shim", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "bin").mkdir()
    (root / "bin" / "kaggle-boot.sh").write_text('#!/usr/bin/env bash\necho "boot $*"\n')
    shutil.copytree(REPO / "kaggle" / "spectramind-v50-infer", root / "kaggle" / "spectramind-v50-infer")
    (root / "weights").mkdir()
    (root / "weights" / "v50.pt").write_bytes(bytes(range(256)) * 8)
    (root / ".gitignore").write_text("/dist/\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "tiny project")
    project = TinyProject(root=root, index_files=index_files, cache=cache or base / f"cache-{name}")
    project.seed_build_deps(setuptools)
    return project


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A fixed path under the session's temp root: modules that re-export this fixture get their
    # own fixture instance, but the same cache (so the project wheel is built once per session).
    folder = tmp_path_factory.getbasetemp() / "bundler-cache"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def tiny(
    tmp_path: Path, setuptools_whl: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TinyProject]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    project = make_tiny_project(tmp_path, setuptools_whl, cache=shared_cache)
    with serve_index(project.index_files) as index:
        project.index = index
        yield project


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Run ``python -m bundler ARGV --json`` in-process: (exit code, JSON object, stderr)."""
    code = bundler_main([*argv[:1], "--json", *argv[1:]])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- tests ---------------------------------------------------------------------------------------


def test_build_writes_the_bundle_of_design_section_5(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    code, data, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    files = sorted(tree_bytes(out))
    configs = [p.relative_to(tiny.root).as_posix() for p in (tiny.root / "configs").rglob("*") if p.is_file()]
    modules = sorted(p.stem for p in (REPO / "src" / "spectramind" / "shim").glob("*.py"))
    tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    shim = [f"boot/shim/{m}.py" for m in modules] + [f"boot/shim/__pycache__/{m}.{tag}.pyc" for m in modules]
    assert [f for f in files if not f.startswith("site/")] == sorted(
        [
            "MANIFEST.json",
            *configs,
            "boot/kaggle-boot.sh",
            *shim,
            "dataset-metadata.json",
            "requirements.lock",
            "sbom.cdx.json",
            "sbom.spdx.json",
            "weights/v50.pt",
        ]
    )
    # the delta ships installed: import tree, dist-info with RECORD and INSTALLER, target .pyc
    site = {f for f in files if f.startswith("site/")}
    for name in (
        "site/lib/tinydep/__init__.py",
        f"site/lib/tinydep/__pycache__/__init__.{tag}.pyc",
        "site/lib/tinydep-1.0.dist-info/METADATA",
        "site/lib/tinydep-1.0.dist-info/RECORD",
        "site/lib/spectramind/__init__.py",
        "site/lib/spectramind/shim/main.py",
        "site/lib/spectramind-0.0.1.dist-info/INSTALLER",
    ):
        assert name in site, name
    assert (out / "site/lib/tinydep-1.0.dist-info/INSTALLER").read_text() == "spectramind-bundler\n"
    assert not (out / "wheels").exists()  # no installer runs at boot, so no wheels ship
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert set(manifest) == {
        "schema",
        "bundle_sha256",
        "target",
        "image",
        "lock_sha256",
        "git_commit",
        "created",
        "files",
        "skipped",
        "built",
        "install",
        "site",
        "pyc",
    }
    assert manifest["schema"] == 2 and manifest["install"] == "site"
    assert [(d["name"], d["version"]) for d in manifest["site"]] == [
        ("spectramind", "0.0.1"),
        ("tinydep", "1.0"),
    ]
    assert manifest["site"][1]["sha256"] == sha256_file(tiny.index_files / "tinydep-1.0-py3-none-any.whl")
    assert manifest["pyc"]["mode"] == "unchecked-hash"
    assert manifest["pyc"]["python"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    assert manifest["target"]["python"] == "3.11" and manifest["target"]["abi"] == "cp311"
    assert "manylinux_2_36_x86_64" in manifest["target"]["platforms"]
    assert manifest["image"] == {
        "name": IMAGE,
        "sha256": sha256_file(tiny.root / "configs" / "images" / f"{IMAGE}.json"),
    }
    assert manifest["lock_sha256"] == sha256_file(tiny.root / "requirements.lock")
    assert manifest["git_commit"] == _git(tiny.root, "rev-parse", "HEAD")
    assert manifest["created"] == "2025-06-01T12:00:00Z"  # the commit time: no SOURCE_DATE_EPOCH
    assert manifest["skipped"] == [{"name": "numpy", "version": "2.1.3"}]
    assert [b["filename"] for b in manifest["built"]] == ["spectramind-0.0.1-py3-none-any.whl"]
    assert [f["path"] for f in manifest["files"]] == sorted(set(files) - {"MANIFEST.json"})
    for entry in manifest["files"]:
        assert entry["sha256"] == sha256_file(out / entry["path"])
    assert data["bundle_sha256"] == manifest["bundle_sha256"] and data["files"] == len(manifest["files"])
    assert os.access(out / "boot" / "kaggle-boot.sh", os.X_OK)
    # Kaggle metadata and the kernel folder beside the bundle.
    meta = json.loads((out / "dataset-metadata.json").read_text())
    assert meta == {
        "id": "spectramind/spectramind-v50-bundle",
        "licenses": [{"name": "CC0-1.0"}],
        "title": "SpectraMind V50 offline bundle",
    }
    kernel = json.loads(
        (out.parent / "kernels" / "spectramind-v50-infer" / "kernel-metadata.json").read_text()
    )
    assert kernel["enable_internet"] is False
    assert kernel["dataset_sources"] == ["spectramind/spectramind-v50-bundle"]
    assert kernel["competition_sources"] == ["ariel-data-challenge-2025"]
    code = (out.parent / "kernels" / "spectramind-v50-infer" / "infer.py").read_text()
    assert f'EXPECTED_BUNDLE_SHA256 = "{manifest["bundle_sha256"]}"' in code  # boot refuses any other
    # Human output: the final table on stderr.
    assert "bundle hash" in err and manifest["bundle_sha256"][:16] in err


def test_wheels_mode_ships_wheels_and_no_site(tiny: TinyProject, capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny.root / "dist" / "bundle"
    code, _, err = run_cli(tiny.args(out, "bundle.install=wheels"), capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "wheels").iterdir()) == [
        "spectramind-0.0.1-py3-none-any.whl",
        "tinydep-1.0-py3-none-any.whl",
    ]
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert not (out / "site").exists() and manifest["install"] == "wheels" and manifest["site"] == []


def test_pyc_false_ships_sources_only(tiny: TinyProject, capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny.root / "dist" / "bundle"
    code, data, err = run_cli(tiny.args(out, "bundle.pyc=false"), capsys)
    assert code == 0, err
    assert not list((out / "site").rglob("*.pyc")) and (out / "site/lib/tinydep/__init__.py").is_file()
    assert data["pyc"]["mode"] == "none" and "bundle.pyc=false" in data["pyc"]["reason"]
    assert not [w for w in data["warnings"] if "pyc" in w]  # asked for: no warning


def test_two_checkouts_build_byte_identical_bundles(
    tiny: TinyProject, tmp_path: Path, setuptools_whl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone_root = tmp_path / "elsewhere" / "checkout"
    clone_root.parent.mkdir()
    subprocess.run(["git", "clone", "-q", str(tiny.root), str(clone_root)], check=True)
    # Its own, empty cache: the clone's project wheel and wheelhouse are built from scratch.
    clone = TinyProject(clone_root, tiny.index_files, tmp_path / "clone-cache", index=tiny.index)
    clone.seed_build_deps(setuptools_whl)
    (clone_root / "weights" / "v50.pt").write_bytes((tiny.root / "weights" / "v50.pt").read_bytes())

    first, second = tiny.root / "dist" / "bundle", tmp_path / "other-out" / "b"
    code1, data1, err1 = run_cli(tiny.args(first), capsys)
    code2, data2, err2 = run_cli(clone.args(second), capsys)
    assert (code1, code2) == (0, 0), err1 + err2
    assert data1["bundle_sha256"] == data2["bundle_sha256"]
    assert tree_bytes(first) == tree_bytes(second)
    # A rebuild in place (project wheel from the cache now) gives the same bytes again.
    code3, data3, _ = run_cli(tiny.args(first), capsys)
    assert code3 == 0 and data3["bundle_sha256"] == data1["bundle_sha256"]


def test_a_commit_that_packs_nothing_new_keeps_the_bundle_hash(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """The build is dated by the last commit touching what it packs, not by HEAD."""

    def commit(path: str, text: str, date: str) -> None:
        (tiny.root / path).write_text(text)
        _git(tiny.root, "add", path)
        who = {
            f"GIT_{role}_{key}": value
            for role in ("AUTHOR", "COMMITTER")
            for key, value in (("NAME", "t"), ("EMAIL", "t@example.invalid"), ("DATE", date))
        }
        subprocess.run(
            ["git", "commit", "-q", "-m", path], cwd=tiny.root, env={**os.environ, **who}, check=True
        )

    out = tiny.root / "dist" / "bundle"
    code, before, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    commit("README.md", "docs only\n", "2025-07-01T00:00:00+00:00")
    code, docs, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert docs["bundle_sha256"] == before["bundle_sha256"]
    assert docs["git_commit"] == before["git_commit"]  # the last commit that changed what is packed
    commit("src/spectramind/extra.py", "VALUE = 1\n", "2025-08-01T00:00:00+00:00")
    code, changed, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    assert changed["bundle_sha256"] != before["bundle_sha256"]
    assert changed["created"] == "2025-08-01T00:00:00Z"
    assert changed["git_commit"] == _git(tiny.root, "rev-parse", "HEAD")


def test_source_date_epoch_sets_created_and_changes_nothing_else_by_accident(
    tiny: TinyProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = tiny.root / "dist" / "bundle"
    code, _, err = run_cli(tiny.args(out), capsys)
    assert code == 0, err
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["created"] == "2023-11-14T22:13:20Z"
    assert int((out / "MANIFEST.json").stat().st_mtime) == 1700000000


def test_limits_are_checked_before_anything_is_written(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    tiny.extra = ["bundle.limits.max_top_level_entries=3"]
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 3
    assert "top-level entries" in data["what"] and "max_top_level_entries" in data["fix"]
    assert not out.exists() and not list(out.parent.glob(".bundle.*"))
    tiny.extra = ["bundle.limits.max_total_bytes=1000"]
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 3 and "the limit is 1,000" in data["what"]
    assert not out.exists()


def test_limits_count_nested_files_and_apparent_bytes_before_copying(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny.root / "dist" / "bundle"
    deep = tiny.root / "configs" / "many" / "a" / "b"
    deep.mkdir(parents=True)
    for i in range(2500):
        (deep / f"f{i}.yaml").write_text("x: 1\n")
    tiny.extra = ["bundle.limits.max_files=2000"]
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 3 and "files (nested included); the limit is 2,000" in data["what"]
    assert "configs: 2,5" in data["where"] and "checked before copying" in data["where"]
    shutil.rmtree(tiny.root / "configs" / "many")
    sparse = tiny.root / "weights" / "huge.bin"
    with sparse.open("wb") as fh:
        fh.truncate(21 * 1024**3)  # 21 GiB apparent, nothing on disk: would be copied in full
    tiny.extra = []
    code, data, _ = run_cli(tiny.args(out), capsys)
    assert code == 3 and "the limit is 21,474,836,480" in data["what"]
    assert "weights" in data["where"] and "checked before copying" in data["where"]
    assert not out.exists() and not list(out.parent.glob(".bundle.*"))


def test_symlink_leaving_the_project_is_rejected(
    tiny: TinyProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("x: 1\n")
    (tiny.root / "configs" / "leak.yaml").symlink_to(outside)
    code, data, _ = run_cli(tiny.args(tiny.root / "dist" / "bundle"), capsys)
    assert code == 3 and "symlink points outside the project" in data["what"]
    assert "leak.yaml" in data["where"]
    # A link that stays inside the project is packed as the file it points to.
    (tiny.root / "configs" / "leak.yaml").unlink()
    (tiny.root / "configs" / "alias.yaml").symlink_to(tiny.root / "configs" / "config.yaml")
    code, _, err = run_cli(tiny.args(tiny.root / "dist" / "bundle"), capsys)
    assert code == 0, err
    packed = tiny.root / "dist" / "bundle" / "configs" / "alias.yaml"
    assert (
        not packed.is_symlink()
        and packed.read_bytes() == (tiny.root / "configs" / "config.yaml").read_bytes()
    )


def test_absolute_build_paths_never_reach_the_bundle(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    (tiny.root / "configs" / "data" / "local.yaml").write_text(f"root: {tiny.root}/data/demo\n")
    code, data, _ = run_cli(tiny.args(tiny.root / "dist" / "bundle"), capsys)
    assert code == 3 and "absolute path of the build machine" in data["what"]
    assert "configs/data/local.yaml:1" in data["where"]
    # Nothing of the failed build is left beside --out.
    assert not (tiny.root / "dist").exists() or not list((tiny.root / "dist").glob(".bundle.*"))


def test_refuses_to_replace_a_directory_that_is_not_a_bundle(
    tiny: TinyProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")
    code, data, _ = run_cli(tiny.args(precious), capsys)
    assert code == 2 and "not a bundle" in data["what"]
    assert (precious / "notes.txt").read_text() == "keep me\n"


def test_created_time_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bundler.commands.build import git_info, source_date_epoch
    from bundler.errors import UsageError

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert git_info(tmp_path) == (None, None)  # not a checkout
    assert source_date_epoch(None) == 315532800  # fixed, never the clock
    assert source_date_epoch(GIT_EPOCH) == GIT_EPOCH
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date_epoch(GIT_EPOCH) == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch(GIT_EPOCH)


def test_missing_lock_is_a_usage_error(tiny: TinyProject, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny.root / "requirements.lock").unlink()
    code, data, _ = run_cli(tiny.args(tiny.root / "dist" / "bundle"), capsys)
    assert code == 2 and "lock file does not exist" in data["what"] and "bundler lock" in data["fix"]
