"""A GPU image: the lock keeps its CUDA torch build and the wheelhouse never ships torch or nvidia-*.

Real uv locks against a loopback index whose torch declares a CUDA library, as PyPI's linux torch
does; the image manifest holds ``torch==2.5.1+cu124`` and that library. The same index then serves
the wheelhouse build, and its request log shows nothing of the CUDA stack was fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.errors import BundlerError
from bundler.image import load_image_file
from tests.support.index import LocalIndex, serve_index
from tests.support.wheels import make_wheel
from tests.test_wheelhouse import IMAGE, Project, make_project, write_lock

CUBLAS = "nvidia-cublas-cu12"
GPU_IMAGE = [
    {"name": "torch", "version": "2.5.1+cu124", "requires_dist": [f"{CUBLAS}==12.4.5.8"]},
    {"name": CUBLAS, "version": "12.4.5.8", "requires_dist": []},
    {"name": "nvidia-ml-py", "version": "12.560.30", "requires_dist": []},
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    files = tmp_path_factory.mktemp("gpu-index")
    make_wheel(files, "torch", "2.5.1", requires=[f"{CUBLAS}==12.4.5.8"])
    make_wheel(files, "torch", "2.6.0", requires=[f"{CUBLAS}==12.6.4.1"])
    make_wheel(files, CUBLAS, "12.4.5.8")
    make_wheel(files, CUBLAS, "12.6.4.1")
    with serve_index(files) as served:
        yield served


def _lock(project: Project, index: LocalIndex, requirements: str) -> None:
    (project.root / "requirements.in").write_text(requirements)
    code = main(
        [
            "lock", "--config-dir", str(project.configs),
            f"target.image={IMAGE}", f"bundle.index_url={index.simple_url}",
            f"bundle.cache_dir={project.root / 'cache'}",
        ]
    )  # fmt: skip
    assert code == 0


def test_lock_keeps_the_image_cuda_torch_and_ships_none_of_it(tmp_path: Path, index: LocalIndex) -> None:
    project = make_project(tmp_path, GPU_IMAGE)
    assert load_image_file(project.configs / "images" / f"{IMAGE}.json").torch_cuda == "12.4"
    _lock(project, index, "torch>=2.4\n")
    text = project.lock.read_text()
    assert "torch==2.5.1 " in text and f"{CUBLAS}==12.4.5.8 " in text  # the image's build, kept
    seen = len(index.requests)
    result = project.build(index.simple_url)
    assert result.wheels == []  # no CPU torch, no nvidia-* wheel
    assert {s["name"] for s in result.skipped} == {"torch", CUBLAS}
    assert not [p for p in index.requests[seen:] if p.startswith("/files/")]


def test_a_forced_torch_change_is_refused_before_any_download(tmp_path: Path, index: LocalIndex) -> None:
    project = make_project(tmp_path, GPU_IMAGE)
    _lock(project, index, "torch>=2.6\n")  # the image's 2.5.1 cannot stay
    seen = len(index.requests)
    with pytest.raises(BundlerError, match="part of the GPU image's CUDA stack") as info:
        project.build(index.simple_url)
    assert "torch 2.6.0 (the image's is the CUDA 12.4 build 2.5.1+cu124)" in info.value.what
    assert f"{CUBLAS} 12.6.4.1 (a CUDA library)" in info.value.what
    assert index.requests[seen:] == []


def test_self_contained_still_takes_the_cuda_stack_from_the_image(tmp_path: Path, index: LocalIndex) -> None:
    project = make_project(tmp_path, GPU_IMAGE)
    _lock(project, index, "torch>=2.4\n")
    result = project.build(index.simple_url, "bundle.self_contained=true")
    assert result.wheels == [] and {s["name"] for s in result.skipped} == {"torch", CUBLAS}


def test_cpu_image_manifest_is_not_a_gpu_image(repo: Path) -> None:
    image = load_image_file(repo / "configs" / "images" / "kaggle-cpu-2026-06.json")
    assert image.torch_cuda is None and image.built_for_image("torch")  # 2.10.0+cpu: only the image has it
    assert not image.built_for_image("numpy")
    assert len(image.distributions) == 873  # every line of Kaggle's list, none dropped


def test_self_contained_ships_what_the_image_has(tmp_path: Path) -> None:
    """bundle.self_contained=true: the skipped packages are downloaded too (MANIFEST ``skipped`` is
    empty), except the image's own builds: a ``+cpu`` torch is not on the index."""
    project = make_project(
        tmp_path,
        [
            {"name": "numpy", "version": "2.1.3", "requires_dist": []},
            {"name": "torch", "version": "2.5.1+cpu", "requires_dist": []},
        ],
    )
    numpy = make_wheel(project.files, "numpy", "2.1.3")
    torch = make_wheel(project.files, "torch", "2.5.1")
    write_lock(project, [("numpy", "2.1.3", [numpy]), ("torch", "2.5.1", [torch])])
    with serve_index(project.files) as served:
        default = project.build(served.simple_url)
        assert default.wheels == [] and [s["name"] for s in default.skipped] == ["numpy", "torch"]
        full = project.build(served.simple_url, "bundle.self_contained=true")
    assert [w.filename for w in full.wheels] == [numpy.name]
    assert full.skipped == [{"name": "torch", "version": "2.5.1"}]


def test_self_contained_skips_nothing_for_an_image_of_public_builds(tmp_path: Path) -> None:
    project = make_project(tmp_path, [{"name": "numpy", "version": "2.1.3", "requires_dist": []}])
    numpy = make_wheel(project.files, "numpy", "2.1.3")
    write_lock(project, [("numpy", "2.1.3", [numpy])])
    with serve_index(project.files) as served:
        result = project.build(served.simple_url, "bundle.self_contained=true")
    assert result.skipped == []  # what MANIFEST.json records as `skipped`
    assert [w.filename for w in result.wheels] == [numpy.name]
