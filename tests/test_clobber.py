"""The clobber check: image + delta, every Requires-Dist evaluated for the target."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.clobber import Installed, casualties, check_clobber, wheel_requires
from bundler.errors import BundlerError
from bundler.image import Distribution, ImageManifest
from tests.support.wheels import make_wheel

ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


def image(*dists: tuple[str, str, tuple[str, ...]]) -> ImageManifest:
    return ImageManifest(
        name="img",
        sha256="0" * 64,
        python="3.11.7",
        abi="cp311",
        platforms=(),
        glibc="2.36",
        cuda={},
        distributions={n.lower(): Distribution(n, v, r) for n, v, r in dists},
    )


def bundle(name: str, version: str, *requires: str) -> dict[str, Installed]:
    return {name: Installed(name, version, tuple(requires), "bundle")}


IMG = image(
    ("numpy", "2.0.2", ()),
    ("numba", "0.60.0", ("numpy<2.1,>=1.22", "llvmlite<0.44,>=0.43.0dev0")),
    ("llvmlite", "0.43.0", ()),
    ("scipy", "1.14.1", ("numpy<2.3,>=1.23.5", 'pytest; extra == "test"')),
    ("oldpkg", "1.0", ("numpy<1.0",)),  # already broken in the image: not the bundle's doing
    ("tomlish", "1.0", ('numpy<2; python_version < "3.9"',)),  # marker false on the target
)


def test_numpy_upgrade_names_each_casualty() -> None:
    broken = casualties(IMG, bundle("numpy", "2.4.0"), ENV)
    assert broken == [
        "numba 0.60.0 requires numpy<2.1,>=1.22 but the bundle installs numpy 2.4.0",
        "scipy 1.14.1 requires numpy<2.3,>=1.23.5 but the bundle installs numpy 2.4.0",
    ]


def test_compatible_delta_breaks_nothing() -> None:
    assert casualties(IMG, bundle("numpy", "2.0.1"), ENV) == []
    assert casualties(IMG, bundle("llvmlite", "0.43.1"), ENV) == []


def test_delta_packages_are_checked_too() -> None:
    delta = {
        **bundle("hydra-core", "1.3.2", "antlr4-python3-runtime==4.9.*", "numpy>=2.1"),
        **bundle("tinyextra", "1.0", 'pandas; extra == "df"'),
    }
    assert casualties(IMG, delta, ENV) == [
        "hydra-core 1.3.2 requires antlr4-python3-runtime==4.9.* but neither the image nor the bundle has it",
        "hydra-core 1.3.2 requires numpy>=2.1 but the image has numpy 2.0.2",
    ]


def test_check_raises_or_warns() -> None:
    delta = bundle("numpy", "2.4.0")
    with pytest.raises(BundlerError, match="would break 2 requirement") as info:
        check_clobber(IMG, delta, ENV, allow=False, where="requirements.lock")
    assert "numba 0.60.0 requires numpy<2.1,>=1.22" in info.value.what
    assert info.value.where == "requirements.lock"
    warnings = check_clobber(IMG, delta, ENV, allow=True, where="requirements.lock")
    assert len(warnings) == 2
    assert all(w.startswith("clobber: ") for w in warnings)


def test_wheel_requires_reads_metadata(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tiny", "1.0", requires=["numpy>=2", 'rich; extra == "ui"'])
    assert wheel_requires(wheel) == ("numpy>=2", 'rich; extra == "ui"')
