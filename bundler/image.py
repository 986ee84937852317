"""Image manifests: what a Kaggle image already has (configs/images/<name>.json).

Written by ``python -m bundler probe`` inside the image. Schema (version 1)::

    {
      "schema": 1,
      "name": "kaggle-sim-cp311",
      "note": "how it was captured / how to recreate it",
      "python": {"version": "3.11.7", "implementation": "cpython", "abi": "cp311"},
      "platform": {"system": "Linux", "machine": "x86_64", "glibc": "2.36",
                   "platforms": ["manylinux_2_36_x86_64", ...],      # accepted platform tags
                   "tags": ["cp311-cp311-manylinux_2_36_x86_64", ...]},  # full interpreter tags
      "cuda": {"driver": null, "runtime": null, "torch_cuda": null,     # torch_cuda: "12.6" for
               "packages": ["nvidia-cublas-cu12==12.6.4.1", ...]},       #   a +cu126 build
      "tools": {"uv": {"path": "...", "version": "0.9.5"}, "nvidia-smi": null},   # optional
      "kaggle": {"docker_image": "gcr.io/kaggle-images/python@sha256:..."},       # optional
      "source": {...}, "assumed": {...},          # optional: how a freeze-derived manifest was made
      "distributions": [{"name": "numpy", "version": "2.1.3", "requires_dist": ["..."]},
                        {"name": "torch", "version": "2.10.0+cpu", "requires_dist": [],
                         "requires_unknown": true}, ...]      # the index could not describe it
    }

``kaggle.docker_image`` is what kernels pin (``docker_image`` in kernel-metadata.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import UsageError
from bundler.probe import torch_cuda_from_version

# NVIDIA's pure-Python packages; every other nvidia-* distribution is a CUDA library torch loads.
_NOT_CUDA_LIBRARIES = frozenset({"nvidia-ml-py", "nvidia-ml-py3"})


def is_cuda_library(name: str) -> bool:
    """``nvidia-cublas-cu12``, ``nvidia-cudnn-cu12``, ``nvidia-cuda-runtime`` ...: CUDA wheels."""
    key = str(canonicalize_name(name))
    return key.startswith("nvidia-") and key not in _NOT_CUDA_LIBRARIES


@dataclass(frozen=True)
class Distribution:
    """One installed distribution of the image."""

    name: str
    version: str
    requires: tuple[str, ...]
    requires_unknown: bool = False  # Requires-Dist could not be learnt (freeze-derived manifests)


@dataclass(frozen=True)
class ImageManifest:
    """A parsed image manifest; ``distributions`` is keyed by canonical (PEP 503) name."""

    name: str
    sha256: str
    python: str
    abi: str
    platforms: tuple[str, ...]
    glibc: str | None
    cuda: dict[str, Any]
    distributions: dict[str, Distribution]
    docker_image: str | None = None  # kaggle.docker_image: what kernels pin

    @property
    def torch_cuda(self) -> str | None:
        """The CUDA version of the image's torch build (``12.4`` for ``2.5.1+cu124``); None on CPU."""
        recorded = self.cuda.get("torch_cuda")
        if recorded:
            return str(recorded)
        torch = self.get("torch")
        return torch_cuda_from_version(torch.version) if torch else None

    def built_for_image(self, name: str) -> bool:
        """True for what only the image can provide: a build the public index does not publish
        (a local version such as ``+cpu``) or, in a GPU image, its CUDA libraries (``nvidia-*``)."""
        dist = self.get(name)
        if dist is None:
            return False
        try:
            local = Version(dist.version).local is not None
        except InvalidVersion:
            local = True
        return local or (self.torch_cuda is not None and is_cuda_library(name))

    def get(self, name: str) -> Distribution | None:
        return self.distributions.get(str(canonicalize_name(name)))

    def has(self, name: str, version: str) -> bool:
        """True when the image has ``name`` at ``version``.

        A local label on the image side matches the public version (the image's ``2.13.0+cpu``
        satisfies a lock pin ``==2.13.0``, as PEP 440 ``==`` does).
        """
        dist = self.get(name)
        if dist is None:
            return False
        try:
            have, want = Version(dist.version), Version(version)
        except InvalidVersion:
            return dist.version == version
        return have == want or (want.local is None and have.public == want.public)


def parse_image(data: dict[str, Any], *, name: str, sha256: str, where: str) -> ImageManifest:
    try:
        dists: dict[str, Distribution] = {
            str(canonicalize_name(d["name"])): Distribution(
                name=d["name"],
                version=d["version"],
                requires=tuple(d.get("requires_dist") or ()),
                requires_unknown=bool(d.get("requires_unknown")),
            )
            for d in data["distributions"]
        }
        return ImageManifest(
            name=data.get("name", name),
            sha256=sha256,
            python=data["python"]["version"],
            abi=data["python"]["abi"],
            platforms=tuple(data["platform"]["platforms"]),
            glibc=data["platform"].get("glibc"),
            cuda=dict(data.get("cuda") or {}),
            distributions=dists,
            docker_image=(data.get("kaggle") or {}).get("docker_image"),
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"image manifest is malformed (missing {exc})",
            where=where,
            fix="re-capture it with `python -m bundler probe --out FILE` inside the image",
        ) from exc


def load_image_file(path: Path) -> ImageManifest:
    """Load an image manifest from a file."""
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError as exc:
        raise UsageError(
            "image manifest not found",
            where=str(path),
            fix="capture one with `python -m bundler probe --out FILE` inside the image",
        ) from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"image manifest is not valid JSON: {exc}",
            where=str(path),
            fix="re-capture it with `python -m bundler probe`",
        ) from exc
    return parse_image(data, name=path.stem, sha256=hashlib.sha256(raw).hexdigest(), where=str(path))


def load_image(config_dir: Path, name: str) -> ImageManifest:
    """Load ``configs/images/<name>.json``; an unknown name lists the ones that exist."""
    path = config_dir / "images" / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir / "images").glob("*.json"))
        raise UsageError(
            f"unknown image manifest '{name}'",
            where=str(path),
            fix=(
                f"choose one of {known or '(none)'} with target.image=NAME, capture yours with "
                f"`python -m bundler probe --out {path}` inside the Kaggle image, or derive it from "
                f"the image's `pip freeze` list: `python -m bundler probe --from-freeze FILE --name {name} "
                "--python X.Y --glibc A.B`"
            ),
        )
    return load_image_file(path)
