"""`probe --from-freeze`: an image manifest from a pip freeze list, described by a real index.

The loopback index serves tiny wheels, with PEP 658 ``.metadata`` files or without them (the wheel
fallback); its request log shows what was fetched. One test, marked ``network``, asks PyPI.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bundler.cli import main
from bundler.errors import UsageError
from bundler.freeze import parse_freeze
from bundler.image import load_image_file
from tests.support.index import LocalIndex, serve_index
from tests.support.wheels import make_sdist, make_wheel

FREEZE = """\
# pip freeze of a tiny image
alpha==1.0
Beta_Pkg==2.0
torch==2.5.1+cpu
python-apt==0.0.0
ghost==1.0
onlysdist==0.3
-e git+https://example.invalid/x.git#egg=mine
"""


def _index_folder(folder: Path) -> Path:
    make_wheel(folder, "alpha", "1.0", requires=["beta-pkg>=2", 'numpy>=1; extra == "fast"'])
    make_wheel(folder, "alpha", "1.0", requires=["beta-pkg>=2"], tag="cp312-cp312-manylinux_2_17_x86_64")
    make_wheel(folder, "beta-pkg", "2.0")
    make_wheel(folder, "torch", "2.5.1", requires=["nvidia-cublas-cu12==12.4.5.8"])
    make_sdist(folder, "onlysdist", "0.3", requires=["alpha"])
    return folder


@pytest.fixture
def project(tmp_path: Path, repo: Path) -> Path:
    shutil.copytree(repo / "configs", tmp_path / "configs", ignore=shutil.ignore_patterns("*.json", "*.txt"))
    (tmp_path / "freeze.txt").write_text(FREEZE)
    return tmp_path


def probe(
    project: Path, index: LocalIndex | str, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    url = index if isinstance(index, str) else index.simple_url
    code = main(
        [
            "probe", "--from-freeze", str(project / "freeze.txt"), "--name", "tiny",
            "--python", "3.12", "--glibc", "2.35", "--json",
            "--config-dir", str(project / "configs"), *extra,
            f"bundle.index_url={url}", f"bundle.cache_dir={project / 'cache'}",
        ]
    )  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


def _dists(project: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((project / "configs" / "images" / "tiny.json").read_text())
    return {d["name"]: d for d in data["distributions"]}


def test_parse_freeze_reads_every_line_form() -> None:
    text = (
        "# comment\n\nalpha==1.0\nbeta===2.0  # trailing\n"
        "local @ file:///tmp/wheels/local_pkg-0.4-py3-none-any.whl\n"
        "checkout @ file:///src/checkout\n-e /src/mine\n"
    )
    parsed = parse_freeze(text, "f.txt")
    got = {e.name: (e.version, e.url) for e in parsed.entries}
    assert got == {
        "alpha": ("1.0", None),
        "beta": ("2.0", None),
        "local": ("0.4", "file:///tmp/wheels/local_pkg-0.4-py3-none-any.whl"),
        "checkout": ("unknown", "file:///src/checkout"),
    }
    assert parsed.notes == ("line 7: editable install skipped (not part of the image): -e /src/mine",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alpha==1.0\nbeta>=2\n", r"not a pip freeze line: 'beta>=2'"),
        ("alpha==1.0\nAlpha==2.0\n", r"Alpha is listed twice \(1.0 at line 1 and 2.0\)"),
        ("# nothing\n", "names no distribution"),
    ],
)
def test_bad_freeze_lists_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_freeze(text, "f.txt")
    assert info.value.where is not None and info.value.where.startswith("f.txt")


def test_pep658_metadata_fills_requires_and_unknowns_are_kept(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_index(_index_folder(tmp_path / "wheels"), metadata=True) as index:
        code, data = probe(project, index, capsys)
    assert code == 0
    dists = _dists(project)
    assert dists["alpha"]["requires_dist"] == ["beta-pkg>=2"]  # the cp312 wheel's (target tags first)
    assert dists["Beta_Pkg"] == {"name": "Beta_Pkg", "version": "2.0", "requires_dist": []}
    unknown = {u["name"]: u["reason"] for u in data["requires_unknown"]}
    assert set(unknown) == {"torch", "python-apt", "ghost", "onlysdist"}  # kept, never dropped
    assert "local version label +cpu" in unknown["torch"]
    assert "0.0.0" in unknown["python-apt"] and "not on the index" in unknown["ghost"]
    assert "only an sdist" in unknown["onlysdist"]
    assert dists["torch"]["requires_unknown"] is True and dists["torch"]["version"] == "2.5.1+cpu"
    assert data["skipped_lines"] == [
        "line 8: editable install skipped (not part of the image): "
        "-e git+https://example.invalid/x.git#egg=mine"
    ]
    fetched = sorted(p for p in index.requests if p.startswith("/files/"))
    assert fetched == [  # the target's wheel's .metadata file, never a wheel
        "/files/alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.whl.metadata",
        "/files/beta_pkg-2.0-py3-none-any.whl.metadata",
    ]


def test_without_pep658_the_wheel_is_read(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_index(_index_folder(tmp_path / "wheels"), metadata=False) as index:
        code, _ = probe(project, index, capsys)
    assert code == 0
    assert _dists(project)["alpha"]["requires_dist"] == ["beta-pkg>=2"]
    assert "/files/alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.whl" in index.requests
    assert not any(p.endswith(".metadata") for p in index.requests)


def test_offline_with_a_warm_cache_makes_no_requests(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_index(_index_folder(tmp_path / "wheels"), metadata=True) as index:
        code, first = probe(project, index, capsys)
        assert code == 0 and first["network_requests"] > 0
        before = _dists(project)
        seen = len(index.requests)
        code, second = probe(project, index, capsys, "--offline")
        assert index.requests[seen:] == []  # the server saw nothing
    assert code == 0 and second["network_requests"] == 0
    assert _dists(project) == before


def test_offline_with_a_cold_cache_names_what_is_missing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = probe(project, "http://127.0.0.1:9/simple", capsys, "--offline")
    assert code == 1
    assert data["what"] == (
        "--offline: 4 distribution(s) not described in the cache: alpha==1.0, Beta_Pkg==2.0, ghost==1.0, "
        "onlysdist==0.3"
    )
    assert not (project / "configs" / "images" / "tiny.json").exists()  # nothing half-written


def test_manifest_records_its_source_and_what_it_assumes(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_index(_index_folder(tmp_path / "wheels"), metadata=True) as index:
        code, _ = probe(project, index, capsys, "--docker-image", "gcr.io/kaggle-images/python@sha256:ab")
        assert code == 0
    path = project / "configs" / "images" / "tiny.json"
    data = json.loads(path.read_text())
    assert data["source"]["kind"] == "derived from a freeze list"
    assert data["source"]["sha256"] == hashlib.sha256((project / "freeze.txt").read_bytes()).hexdigest()
    assert {"python.abi", "platform.glibc", "platform.platforms", "tools"} <= set(data["assumed"])
    assert data["platform"]["platforms"][0] == "manylinux_2_35_x86_64"
    assert data["platform"]["tags"][0] == "cp312-cp312-manylinux_2_35_x86_64"
    image = load_image_file(path)
    assert image.python == "3.12" and image.abi == "cp312" and image.glibc == "2.35"
    assert image.docker_image == "gcr.io/kaggle-images/python@sha256:ab"
    torch = image.get("torch")
    assert torch is not None and torch.requires_unknown and image.has("torch", "2.5.1")


def test_freeze_needs_python_and_glibc(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["probe", "--from-freeze", str(project / "freeze.txt"), "--python", "3.12"])
    assert code == 2
    assert "--from-freeze needs --python X.Y[.Z] and --glibc A.B" in capsys.readouterr().err


@pytest.mark.network
def test_pypi_describes_real_packages(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "freeze.txt").write_text("requests==2.32.3\nsix==1.17.0\ntorch==2.10.0+cpu\n")
    code, data = probe(project, "https://pypi.org/simple", capsys)
    assert code == 0
    dists = _dists(project)
    assert "charset-normalizer <4,>=2" in dists["requests"]["requires_dist"]  # as the wheel writes it
    assert dists["six"]["requires_dist"] == []
    assert [u["name"] for u in data["requires_unknown"]] == ["torch"]


def test_shipped_targets_name_a_manifest_or_say_how_to_make_one(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kaggle-cp312 locks against the shipped Kaggle manifest; ariel2025-cp311 has no real package
    list to derive one from, so it stops and names both ways to make its manifest."""
    from bundler.config import load

    settings = load(["target=kaggle-cp312"], str(repo / "configs"))
    assert settings.image_manifest.is_file() and settings.target.image == "kaggle-cpu-2026-06"
    code = main(["lock", "--check", "--config-dir", str(repo / "configs"), "target=ariel2025-cp311"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "unknown image manifest 'ariel2025-cp311'" in err
    assert "python -m bundler probe --from-freeze FILE --name ariel2025-cp311" in err
