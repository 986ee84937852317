"""`python -m bundler lock`: real uv against tiny wheels on a 127.0.0.1 index (plus PyPI, marked).

The index holds:
  heavy 1.0/2.0 -> nvidia-blob (as PyPI's linux torch declares CUDA packages); the image's heavy 1.0
      declares nothing (its own Requires-Dist, like the image's torch 2.13.0+cpu)
  light 1.0/1.5/2.0 (the image has 1.0; keeper 1.0 in the image requires light<2)
  fast 1.0 (cp311 wheels only) and fast 2.0 (cp312 wheels only)
  glib 1.0 (manylinux_2_17) and glib 2.0 (manylinux_2_31 only)
  app 1.0 -> heavy, light
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundler import lockreport, resolver
from bundler.cli import main
from bundler.errors import UsageError
from bundler.image import ImageManifest, load_image
from bundler.lockfile import parse_lock
from spectramind.config import TargetProfile
from tests.support.images import image_manifest
from tests.support.index import LocalIndex, serve_index
from tests.support.wheels import make_wheel, sha256_file

MANYLINUX = "manylinux_2_17_x86_64"


def _image(name: str, python: str, dists: list[tuple[str, str, list[str]]]) -> dict[str, object]:
    return image_manifest(
        name,
        [{"name": n, "version": v, "requires_dist": r} for n, v, r in dists],
        python=python,
        platforms=["manylinux_2_36_x86_64", MANYLINUX],
        note="test image",
    )


IMAGE_DISTS = [
    ("heavy", "1.0", []),
    ("light", "1.0", []),
    ("keeper", "1.0", ["light<2"]),
    ("legacy", "0.1", ["light (>=1.0"]),  # unparsable Requires-Dist, as old images hold: ignored
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    wheels = tmp_path_factory.mktemp("index")
    for version in ("1.0", "2.0"):
        make_wheel(wheels, "heavy", version, requires=["nvidia-blob>=1"])
    make_wheel(wheels, "nvidia-blob", "1.0")
    for version in ("1.0", "1.5", "2.0"):
        make_wheel(wheels, "light", version)
    make_wheel(wheels, "keeper", "1.0", requires=["light<2"])
    make_wheel(wheels, "fast", "1.0", tag=f"cp311-cp311-{MANYLINUX}")
    make_wheel(wheels, "fast", "2.0", tag=f"cp312-cp312-{MANYLINUX}")
    make_wheel(wheels, "app", "1.0", requires=["heavy", "light"])
    make_wheel(wheels, "glib", "1.0", tag=f"py3-none-{MANYLINUX}")
    make_wheel(wheels, "glib", "2.0", tag="py3-none-manylinux_2_31_x86_64")
    with serve_index(wheels) as served:
        yield served


@pytest.fixture
def project(tmp_path: Path, repo: Path) -> Path:
    """A checkout-shaped folder: the repo's configs plus two test images."""
    configs = tmp_path / "configs"
    shutil.copytree(repo / "configs", configs, ignore=shutil.ignore_patterns("*.json", "*.txt"))
    for name, python in (("img311", "3.11.7"), ("img312", "3.12.3")):
        (configs / "images" / f"{name}.json").write_text(json.dumps(_image(name, python, IMAGE_DISTS)))
    return tmp_path


def lock(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    args = ["lock", "--json", "--config-dir", str(project / "configs")]
    args += [a for a in extra if a.startswith("--")]
    args += ["target.image=img311", f"bundle.index_url={index.simple_url}"]
    args += [f"bundle.cache_dir={project / 'cache'}"]
    args += [a for a in extra if not a.startswith("--")]
    code = main(args)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_lock_keeps_image_versions_with_hashes_and_image_metadata(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "requirements.in").write_text("# the app\napp\n")
    code, data, _ = lock(project, index, capsys)
    assert code == 0, data
    pins = {p["name"]: p["version"] for p in data["pins"]}
    # light 2.0 is newest, but the image has 1.0 and app allows it; heavy likewise.
    assert pins == {"app": "1.0", "heavy": "1.0", "light": "1.0"}  # no nvidia-blob: image metadata wins
    assert data["strategy"] == "image-constrained"
    assert data["report"]["kept"] == ["heavy", "light"] and data["report"]["deviations"] == []

    text = (project / "requirements.lock").read_text()
    lockf = parse_lock(project / "requirements.lock")
    image = load_image(project / "configs", "img311")
    assert text.splitlines()[0] == (
        f"# spectramind-lock: requirements-in-sha256={sha256_file(project / 'requirements.in')} "
        f"target=kaggle-sim-cp311 image=img311 image-sha256={image.sha256}"
    )
    files = {p.name.split("-")[0] + "==" + p.name.split("-")[1]: p for p in index.root.glob("*.whl")}
    for pin in lockf.pins:
        assert pin.hashes == (sha256_file(files[pin.key]),)
    assert "# via -r requirements.in" in text and "image img311" in text
    assert str(project) not in text and "/tmp" not in text  # no absolute paths in the lock


def test_target_python_is_used_not_the_build_machines(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """fast 2.0 ships only cp312 wheels: a cp312 target gets it, a cp311 target gets 1.0."""
    (project / "requirements.in").write_text("fast\n")
    code, data, _ = lock(project, index, capsys)
    assert code == 0 and data["python"] == "3.11.7" and data["platform"] == "x86_64-manylinux_2_36"
    assert "fast==1.0 \\" in (project / "requirements.lock").read_text()

    code, data, _ = lock(project, index, capsys, "target=kaggle-cp312", "target.image=img312")
    assert code == 0, data
    assert data["python"] == "3.12.3" and data["platform"] == "x86_64-manylinux_2_35"
    assert [(p["name"], p["version"]) for p in data["pins"]] == [("fast", "2.0")]
    header = parse_lock(project / "requirements.lock").header
    assert header is not None and header.target == "kaggle-cp312"


def test_target_glibc_is_used_not_the_build_machines(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """glib 2.0 needs glibc 2.31: a glibc 2.28 target gets 1.0 whatever this machine's glibc is."""
    (project / "requirements.in").write_text("glib\n")
    code, data, _ = lock(project, index, capsys)
    assert code == 0 and [(p["name"], p["version"]) for p in data["pins"]] == [("glib", "2.0")]
    code, data, _ = lock(project, index, capsys, "target.glibc='2.28'")
    assert code == 0 and data["platform"] == "x86_64-manylinux_2_28"
    assert [(p["name"], p["version"]) for p in data["pins"]] == [("glib", "1.0")]


def test_forced_version_is_reported_with_every_broken_image_package(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "requirements.in").write_text("app\nlight>=2\n")
    code, data, err = lock(project, index, capsys)
    assert code == 0, data
    assert data["strategy"] == "image-preferred"
    pins = {p["name"]: p["version"] for p in data["pins"]}
    assert pins == {"app": "1.0", "heavy": "1.0", "light": "2.0"}  # heavy still at the image's 1.0
    report = data["report"]
    assert report["deviations"] == [
        {"name": "light", "image_version": "1.0", "locked_version": "2.0",
         "required_by": ["-r requirements.in", "app"]}
    ]  # fmt: skip
    assert report["casualties"] == [
        {"package": "keeper", "version": "1.0", "requires": "light<2",
         "conflicts_with": "light", "locked_version": "2.0"}
    ]  # fmt: skip
    assert "breaks keeper 1.0" in err and "light<2" in err


def test_check_reports_out_of_date_and_writes_nothing(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    req = project / "requirements.in"
    req.write_text("light\n")
    assert lock(project, index, capsys)[0] == 0
    lock_path = project / "requirements.lock"
    before = lock_path.read_bytes()
    code, data, _ = lock(project, index, capsys, "--check")
    assert code == 0 and data["up_to_date"] is True

    req.write_text("light\nheavy\n")
    code, data, _ = lock(project, index, capsys, "--check")
    assert code == 1 and "lock out of date" in str(data["what"]) and "requirements.in" in str(data["what"])
    req.write_text("light\n")
    code, data, _ = lock(project, index, capsys, "--check", "target.image=img312", "target=kaggle-cp312")
    assert code == 1 and "target=kaggle-sim-cp311" in str(data["what"])
    image_file = project / "configs" / "images" / "img311.json"
    image_file.write_text(image_file.read_text().replace('"test image"', '"re-captured"'))
    code, data, _ = lock(project, index, capsys, "--check")
    assert code == 1 and "image manifest 'img311' changed" in str(data["what"])
    assert lock_path.read_bytes() == before
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("light\nnumpy>>=1\n", "requirements.in:2"),
        ("--extra-index-url http://elsewhere/simple\nlight\n", "requirements.in:1"),
    ],
)
def test_malformed_requirements_in(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    (project / "requirements.in").write_text(content)
    code, data, _ = lock(project, index, capsys)
    assert code == 1 and "malformed requirements.in" in str(data["what"])
    assert str(data["where"]).endswith(expected)
    assert not (project / "requirements.lock").exists()


def test_unresolvable_requirements_show_uv_reason_and_keep_old_lock(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    lock_path = project / "requirements.lock"
    lock_path.write_text("# previous lock\n")
    (project / "requirements.in").write_text("light>=3\n")
    code, data, _ = lock(project, index, capsys)
    assert code == 1
    assert "cannot be resolved" in str(data["what"]) and "light" in str(data["what"])
    assert "requirements.in" in str(data["fix"])
    assert lock_path.read_text() == "# previous lock\n"
    assert not [p for p in project.iterdir() if p.name.startswith(".requirements.lock")]


def test_unknown_image_manifest(project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "requirements.in").write_text("light\n")
    code, data, _ = lock(project, index, capsys, "target.image=nope")
    assert code == 2 and "unknown image manifest 'nope'" in str(data["what"])
    assert "img311" in str(data["fix"])


def test_machine_uv_settings_do_not_leak_in(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """UV_* variables and a user uv.toml pointing elsewhere change nothing."""
    xdg = project / "xdg"
    (xdg / "uv").mkdir(parents=True)
    (xdg / "uv" / "uv.toml").write_text('index-url = "http://127.0.0.1:9/bogus"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    constraint = project / "evil.txt"
    constraint.write_text("light==1.5\n")
    monkeypatch.setenv("UV_CONSTRAINT", str(constraint))
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/bogus")
    monkeypatch.setenv("UV_PRERELEASE", "allow")
    (project / "requirements.in").write_text("light\n")
    code, data, _ = lock(project, index, capsys)
    assert code == 0, data
    assert [(p["name"], p["version"]) for p in data["pins"]] == [("light", "1.0")]


def _target(glibc: str, machine: str = "x86_64") -> TargetProfile:
    return TargetProfile(
        name="t", python="3.11", implementation="cp", abi="cp311", glibc=glibc, image="i",
        platforms=[f"manylinux_2_17_{machine}"],
    )  # fmt: skip


def test_uv_platform_mapping() -> None:
    assert resolver.uv_platform(_target("2.36")) == "x86_64-manylinux_2_36"
    assert resolver.uv_platform(_target("2.30")) == "x86_64-manylinux_2_28"  # highest level <= glibc
    assert resolver.uv_platform(_target("2.17", "aarch64")) == "aarch64-manylinux2014"
    assert resolver.uv_platform(_target("2.99")) == "x86_64-manylinux_2_40"
    with pytest.raises(UsageError, match="no uv platform"):
        resolver.uv_platform(_target("2.12"))


def test_casualties_follow_target_markers_and_ignore_preexisting_breakage() -> None:
    from bundler.image import parse_image

    image: ImageManifest = parse_image(
        _image(
            "m",
            "3.11.7",
            [
                ("numba", "0.60.0", ["numpy<2.1,>=1.22", 'numpy<1.0; python_version < "3.10"']),
                ("old", "1.0", ["numpy<1.0"]),  # already broken in the image: not the lock's doing
                ("extra-user", "1.0", ['numpy<2; extra == "np"']),  # extras are not installed
                ("numpy", "2.0.2", []),
            ],
        ),
        name="m",
        sha256="0",
        where="test",
    )
    env = {**lockreport_env(), "python_version": "3.11", "python_full_version": "3.11.7"}
    found = lockreport.casualties(image, {"numpy": "2.4.0"}, env)
    assert [(c.package, c.requires) for c in found] == [("numba", "numpy<2.1,>=1.22")]
    assert lockreport.casualties(image, {"numpy": "2.0.2"}, env) == []


def lockreport_env() -> dict[str, str]:
    from bundler.tags import marker_environment

    return marker_environment(_target("2.36"), "3.11.7")


@pytest.mark.network
def test_real_pypi_lock_for_cp311_manylinux(tmp_path: Path, repo: Path) -> None:
    """Against PyPI with the sim image: torch stays CPU-only (no nvidia-*), image pins kept, hashes real."""
    configs = tmp_path / "configs"
    shutil.copytree(repo / "configs", configs)
    req = tmp_path / "requirements.in"
    req.write_text("torch==2.13.0\nmarkupsafe\nsix==1.17.0\n")
    code = main(["lock", "--config-dir", str(configs), f"bundle.cache_dir={tmp_path / 'cache'}"])
    assert code == 0
    lockf = parse_lock(tmp_path / "requirements.lock")
    pins = {p.name: p for p in lockf.pins}
    assert not [n for n in pins if n.startswith("nvidia")], sorted(pins)
    image = load_image(configs, "kaggle-sim-cp311")
    assert pins["markupsafe"].version == image.distributions["markupsafe"].version
    assert pins["torch"].version == "2.13.0"
    six = _simple_hashes("six", "-1.17.0")
    assert six and set(pins["six"].hashes) == set(six.values())
    markupsafe = _simple_hashes("markupsafe", f"-{pins['markupsafe'].version}-")
    cp311 = {h for f, h in markupsafe.items() if "cp311-cp311-manylinux" in f and "x86_64" in f}
    assert cp311 and cp311 <= set(pins["markupsafe"].hashes)


def _simple_hashes(project: str, marker: str) -> dict[str, str]:
    """filename -> sha256 from PyPI's simple page (the `#sha256=` fragments of its links)."""
    import re
    import urllib.request

    # A fresh opener reads the proxy settings now; urlopen's global one keeps whatever an earlier
    # test's (dead, loopback) proxy environment was when it was first used.
    opener = urllib.request.build_opener()
    with opener.open(f"https://pypi.org/simple/{project}/", timeout=60) as response:
        page = response.read().decode()
    return {
        name: digest
        for digest, name in re.findall(r'#sha256=([0-9a-f]{64})"[^>]*>([^<]+)</a>', page)
        if marker in name
    }


def test_header_names_the_manifest_file_the_target_uses(
    project: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture renamed on download (its inner name differs) still locks and checks cleanly."""
    images = project / "configs" / "images"
    shutil.copy(images / "img311.json", images / "renamed.json")
    (project / "requirements.in").write_text("light\n")
    assert lock(project, index, capsys, "target.image=renamed")[0] == 0
    header = parse_lock(project / "requirements.lock").header
    assert header is not None and header.image == "renamed"
    assert lock(project, index, capsys, "--check", "target.image=renamed")[0] == 0
