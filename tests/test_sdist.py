"""Pure-Python sdist -> wheel: reproducible bytes, machine pip config ignored, compiled code refused."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from bundler.errors import BundlerError
from bundler.sdist import build_pure_wheel, build_requires
from tests.support.index import serve_index
from tests.support.wheels import make_sdist, make_wheel, sha256_file

INDEX = "http://127.0.0.1:9/simple"  # never reached: the local build backend is used


def test_same_sdist_same_wheel_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = make_sdist(tmp_path / "src", "tinysrc", "0.3", requires=["numpy>=1.26"])
    first = build_pure_wheel(
        sdist, tmp_path / "a", name="tinysrc", version="0.3", index_url=INDEX, offline=True
    )
    # A different clock, a hostile pip config and another directory must not change a byte.
    bad_conf = tmp_path / "pip.conf"
    bad_conf.write_text(
        "[global]\nindex-url = http://127.0.0.1:9/nowhere\nno-index = false\nconstraint = /nope\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(bad_conf))
    monkeypatch.setenv("PIP_FIND_LINKS", "/nonexistent")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    second = build_pure_wheel(
        sdist, tmp_path / "b", name="tinysrc", version="0.3", index_url=INDEX, offline=True
    )
    assert first.name == second.name == "tinysrc-0.3-py3-none-any.whl"
    assert sha256_file(first) == sha256_file(second)
    with zipfile.ZipFile(first) as zf:
        # Times come from the sdist (2020-01-01), not from the clock or SOURCE_DATE_EPOCH of the caller.
        assert {i.date_time[:3] for i in zf.infolist()} == {(2020, 1, 1)}
        metadata = zf.read("tinysrc-0.3.dist-info/METADATA").decode()
    assert "Requires-Dist: numpy>=1.26" in metadata


def test_compiled_extension_is_refused_with_ways_out(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "src", "tinyc", "1.0", needs_compiler=True)
    with pytest.raises(BundlerError) as info:
        build_pure_wheel(sdist, tmp_path / "out", name="tinyc", version="1.0", index_url=INDEX, offline=True)
    # With a compiler it builds a platform wheel (refused); without one the build fails (refused).
    assert "tinyc 1.0" in info.value.what
    assert "not pure Python" in info.value.what or "cannot build a wheel" in info.value.what
    fix = info.value.fix or ""
    assert "wheel of tinyc 1.0" in fix and "pin another version" in fix and "drop tinyc" in fix
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _sdist_with_pyproject(directory: Path, pyproject: str) -> Path:
    directory.mkdir(parents=True)
    path = directory / "needsbackend-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in {
            "needsbackend-1.0/pyproject.toml": pyproject,
            "needsbackend-1.0/needsbackend/__init__.py": "",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1600000000
            tf.addfile(info, io.BytesIO(data))
    return path


def test_offline_needs_the_build_backend_installed(tmp_path: Path) -> None:
    toml = '[build-system]\nrequires = ["no-such-backend-xyz>=1"]\nbuild-backend = "no_such_backend_xyz"\n'
    sdist = _sdist_with_pyproject(tmp_path / "src", toml)
    assert build_requires(toml.encode()) == ("no-such-backend-xyz>=1",)
    assert build_requires(None) == ("setuptools>=40.8.0",)
    with pytest.raises(BundlerError, match=r"cannot build needsbackend 1\.0 offline") as info:
        build_pure_wheel(
            sdist, tmp_path / "out", name="needsbackend", version="1.0", index_url=INDEX, offline=True
        )
    assert "without --offline" in (info.value.fix or "")


# A PEP 517 backend small enough to serve from the local index: it honours SOURCE_DATE_EPOCH.
BACKEND = """
import base64, hashlib, os, time, zipfile

def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    stamp = time.gmtime(int(os.environ["SOURCE_DATE_EPOCH"]))[:6]
    info = "needsbackend-1.0.dist-info"
    files = {
        "needsbackend/__init__.py": b"",
        info + "/METADATA": b"Metadata-Version: 2.1\\nName: needsbackend\\nVersion: 1.0\\n",
        info + "/WHEEL": b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = "".join(f"{p},{_digest(d)},{len(d)}\\n" for p, d in files.items()) + info + "/RECORD,,\\n"
    files[info + "/RECORD"] = record.encode()
    name = "needsbackend-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, stamp), data)
    return name
"""


def test_missing_backend_is_fetched_from_the_configured_index_only(tmp_path: Path) -> None:
    served = tmp_path / "index"
    make_wheel(served, "tinybackend", "1.0", module_code=BACKEND)
    toml = '[build-system]\nrequires = ["tinybackend==1.0"]\nbuild-backend = "tinybackend"\n'
    sdist = _sdist_with_pyproject(tmp_path / "src", toml)
    with serve_index(served) as index:
        wheel = build_pure_wheel(
            sdist,
            tmp_path / "out",
            name="needsbackend",
            version="1.0",
            index_url=index.simple_url,
            offline=False,
        )
        assert "/simple/tinybackend/" in index.requests  # an isolated build env, from this index
    assert wheel.name == "needsbackend-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:  # SOURCE_DATE_EPOCH = the sdist's newest member (1600000000)
        assert {i.date_time for i in zf.infolist()} == {(2020, 9, 13, 12, 26, 40)}
