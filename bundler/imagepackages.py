"""What the sandbox needs to recreate an image here: its Python, and the packages it can install.

The image's own builds (a ``+cpu`` torch, a ``0.0.0`` system package, a GPU image's CUDA
libraries) are not on the public index; the sandbox can install them only from a wheel folder
(``--find-links``) that holds that exact build. Without them only a payload-free boot can run.
"""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import UsageError
from bundler.image import ImageManifest
from bundler.interpreters import find_python
from bundler.output import console
from bundler.tags import parse_filename


def _in_folders(name: str, version: str, folders: list[Path]) -> bool:
    try:
        want = Version(version)
    except InvalidVersion:
        return False
    for folder in folders:
        for path in folder.glob("*.whl") if folder.is_dir() else ():
            parsed = parse_filename(path.name)
            if parsed is not None and parsed.name == canonicalize_name(name) and parsed.version == want:
                return True
    return False


def split_available(
    image: ImageManifest, packages: list[tuple[str, str]], find_links: list[Path]
) -> tuple[list[tuple[str, str]], list[str]]:
    """``(installable, missing)``: ``missing`` names (``name==version``) the image-only builds that
    no ``find_links`` folder holds."""
    installable: list[tuple[str, str]] = []
    missing: list[str] = []
    for name, version in packages:
        try:
            system = Version(version) == Version("0")
        except InvalidVersion:
            system = True
        image_only = system or image.built_for_image(name)
        if image_only and not _in_folders(name, version, find_links):
            missing.append(f"{name}=={version}")
        else:
            installable.append((name, version))
    return installable, missing


def sandbox_inputs(
    image: ImageManifest, packages: list[tuple[str, str]], find_links: list[Path], *, payload: bool
) -> tuple[list[tuple[str, str]], Path]:
    """The packages to install and the interpreter of the image's Python version.

    Missing image-only builds stop a ``payload`` boot (naming them); a payload-free boot
    (``--command "spectramind test"``) runs without them.
    """
    installable, missing = split_available(image, packages, find_links)
    if missing and payload:
        raise UsageError(
            f"the sandbox cannot recreate image package(s) {', '.join(missing)}: "
            "only the real image has them",
            where=f"image manifest {image.name}",
            fix="put those wheels in a folder named by SPECTRAMIND_SIM_FIND_LINKS, or boot without the "
            'payload: --command "spectramind test"',
        )
    if missing:
        console.print(f"sandbox: without {', '.join(missing)} (only the real image has them)")
    minor = ".".join(image.python.split(".")[:2])
    python = find_python(minor)
    if python is None:
        raise UsageError(
            f"the sandbox needs Python {minor} (image {image.name}) and none is installed here",
            where="PATH, pyenv, uv python find",
            fix=f"install it (pyenv install {minor}, or uv python install {minor}) and run again",
        )
    return installable, python
