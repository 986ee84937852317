"""Kaggle metadata: the bundle's ``dataset-metadata.json`` and the kernel folders ``dist/kernels/<name>/``.

Kernel definitions live in ``kaggle/<name>/`` (``kernel-metadata.json`` + its code file). The build
writes a ready-to-push copy of each with what the profile decides: the bundle dataset attached,
the competition attached, the accelerator (the profile's; with none, a template's ``enable_gpu:
true`` stays, as the training kernel's does), ``enable_internet: false`` written explicitly
(the kaggle client turns internet on when the key is absent) and, where the image manifest records
``kaggle.docker_image``, the image pinned (``docker_image`` with ``docker_image_pinning_type:
"original"``, keys the kaggle client sends as they are): a kernel then runs on the image the lock
was made against, not on whatever image Kaggle ships that week.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler import tempdirs
from bundler.config import BundleSettings
from bundler.errors import UsageError
from bundler.pack import write_json

# License names Kaggle's dataset API accepts (kaggle-api documentation, dataset metadata).
LICENSES = frozenset(
    {
        "CC0-1.0", "CC-BY-4.0", "CC-BY-3.0", "CC-BY-SA-4.0", "CC-BY-SA-3.0", "CC-BY-NC-4.0",
        "CC-BY-NC-SA-4.0", "CC-BY-NC-SA-3.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "CC-BY-IGO-3.0",
        "GPL-2.0", "GPL-3.0", "LGPL-3.0", "AGPL-3.0", "FDL-1.3", "ODbL-1.0", "ODC-BY-1.0", "PDDL",
        "DbCL-1.0", "Apache-2.0", "MIT", "BSD-3-Clause", "CDLA-Permissive-1.0", "CDLA-Sharing-1.0",
        "copyright-authors", "other", "unknown", "reddit-api", "world-bank", "eu-odp-legal-notice",
    }
)  # fmt: skip
# bundle.kernel.accelerator -> Kaggle machine shape (what `kaggle kernels push --accelerator` takes).
ACCELERATORS: dict[str, str | None] = {
    "none": None,
    "gpu-t4x2": "NvidiaTeslaT4",
    "gpu-p100": "NvidiaTeslaP100",
    "tpu-v5e8": "TpuV5E8",
}
# The training kernel (kaggle/<TRAIN_KERNEL>/): it writes weights, never a submission.
TRAIN_KERNEL = "spectramind-v50-train"
METADATA_NAME = "dataset-metadata.json"
KERNEL_METADATA_NAME = "kernel-metadata.json"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def split_ref(ref: str, *, what: str, where: str) -> tuple[str, str]:
    """``owner/slug`` checked against Kaggle's rules (slug 6-50 chars of a-z, 0-9 and '-')."""
    owner, _, slug = ref.partition("/")
    if not owner or not slug or "/" in slug or not _OWNER.match(owner):
        raise UsageError(f"{what} '{ref}' is not 'owner/slug'", where=where, fix="e.g. myname/my-bundle")
    if not 6 <= len(slug) <= 50 or not _SLUG.match(slug):
        raise UsageError(
            f"{what} slug '{slug}' breaks Kaggle's rule: 6-50 characters of a-z, 0-9 and '-'",
            where=where,
            fix="choose a slug such as spectramind-v50-bundle",
        )
    return owner, slug


def dataset_metadata(bundle: BundleSettings) -> dict[str, Any]:
    """The bundle's dataset-metadata.json, validated like the kaggle client does (and stricter)."""
    split_ref(bundle.dataset, what="bundle.dataset", where="configs/bundle (dataset)")
    if not 6 <= len(bundle.title) <= 50:
        raise UsageError(
            f"dataset title has {len(bundle.title)} characters; Kaggle requires 6-50",
            where=f"configs/bundle (title: {bundle.title!r})",
            fix="shorten or lengthen bundle.title",
        )
    if bundle.license not in LICENSES:
        raise UsageError(
            f"unknown Kaggle license name '{bundle.license}'",
            where="configs/bundle (license)",
            fix=f"use one of {', '.join(sorted(LICENSES))}",
        )
    return {"id": bundle.dataset, "licenses": [{"name": bundle.license}], "title": bundle.title}


def machine_shape(bundle: BundleSettings) -> str | None:
    if bundle.kernel.machine_shape:
        return bundle.kernel.machine_shape
    if bundle.kernel.accelerator not in ACCELERATORS:
        raise UsageError(
            f"unknown accelerator '{bundle.kernel.accelerator}'",
            where="configs/bundle (kernel.accelerator)",
            fix=f"use one of {', '.join(ACCELERATORS)} or set kernel.machine_shape to a Kaggle machine shape",
        )
    return ACCELERATORS[bundle.kernel.accelerator]


def kernel_metadata(
    template: dict[str, Any],
    *,
    name: str,
    bundle: BundleSettings,
    where: str,
    docker_image: str | None = None,
) -> dict[str, Any]:
    """One kernel's metadata: the template with the profile's sources, accelerator and internet off."""
    owner, _ = split_ref(bundle.dataset, what="bundle.dataset", where="configs/bundle (dataset)")
    slug = str(template.get("id", name)).rsplit("/", 1)[-1]
    split_ref(f"{owner}/{slug}", what="kernel id", where=where)
    code_file = template.get("code_file")
    if not isinstance(code_file, str) or not code_file:
        raise UsageError(
            "kernel-metadata.json has no code_file", where=where, fix='add "code_file": "infer.py"'
        )
    shape = machine_shape(bundle)
    meta = dict(template)
    meta.update(
        {
            "id": f"{owner}/{slug}",
            "title": str(template.get("title") or slug),
            "code_file": Path(code_file).name,
            "language": template.get("language", "python"),
            "kernel_type": template.get("kernel_type", "script"),
            "is_private": bool(template.get("is_private", True)),
            "enable_internet": False,  # explicit: the kaggle client's default is true
            # A kernel that asks for a GPU (training) keeps it when the profile names no accelerator.
            "enable_gpu": not shape.startswith("Tpu") if shape else template.get("enable_gpu") is True,
            "enable_tpu": shape is not None and shape.startswith("Tpu"),
            "dataset_sources": _merged(template.get("dataset_sources"), bundle.dataset),
            "competition_sources": _merged(template.get("competition_sources"), bundle.competition),
        }
    )
    if docker_image:
        meta.update(docker_image_pinning_type="original", docker_image=docker_image)
    if shape is None:
        meta.pop("machine_shape", None)
    else:
        meta["machine_shape"] = shape
    return meta


def _merged(existing: Any, item: str) -> list[str]:
    items = [str(x) for x in existing] if isinstance(existing, list) else []
    return sorted({*items, item})


@dataclass(frozen=True)
class KernelPlan:
    """One validated kernel folder to write: its metadata and code file."""

    name: str
    id: str
    meta: dict[str, Any]
    code: Path


def kernels_beside(bundle_dir: Path) -> Path:
    """The one rule for where a bundle's kernel folders live: beside it, in ``<bundle_dir>/../kernels``
    (build writes them there; push reads them from there)."""
    return bundle_dir.parent / "kernels"


def plan_kernels(
    kernels_dir: Path, bundle: BundleSettings, docker_image: str | None = None
) -> list[KernelPlan]:
    """Validate every ``kernels_dir/<name>/kernel-metadata.json`` (nothing is written); each pins
    ``docker_image`` when given (the image manifest's ``kaggle.docker_image``)."""
    if not kernels_dir.is_dir():
        return []
    plans = []
    for meta_path in sorted(kernels_dir.glob(f"*/{KERNEL_METADATA_NAME}")):
        name = meta_path.parent.name
        try:
            template = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"kernel metadata is not valid JSON: {exc}", where=str(meta_path)) from exc
        meta = kernel_metadata(
            template, name=name, bundle=bundle, where=str(meta_path), docker_image=docker_image
        )
        code = meta_path.parent / str(template["code_file"])
        if not code.is_file():
            raise UsageError(
                f"the kernel's code file '{template['code_file']}' does not exist",
                where=str(meta_path),
                fix="add the file next to kernel-metadata.json or fix code_file",
            )
        plans.append(KernelPlan(name, str(meta["id"]), meta, code))
    return plans


# The line of a kernel's code file that the build fills in with the bundle it was built with.
EXPECT_LINE = re.compile(r'^EXPECTED_BUNDLE_SHA256 = ".*"$', re.MULTILINE)


def write_kernels(plans: list[KernelPlan], dest: Path, *, bundle_sha256: str = "") -> list[Path]:
    """Write ``dest/<name>/`` (metadata + code file) for each plan; ``dest`` is replaced as a whole.

    A code file's ``EXPECTED_BUNDLE_SHA256 = ""`` line gets ``bundle_sha256``: boot then refuses any
    other bundle attached to the kernel.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempdirs.make(f".{dest.name}.staging-", dest.parent)
    for plan in plans:
        write_json(tmp / plan.name / KERNEL_METADATA_NAME, plan.meta)
        code = plan.code.read_text(encoding="utf-8")
        code = EXPECT_LINE.sub(f'EXPECTED_BUNDLE_SHA256 = "{bundle_sha256}"', code)
        (tmp / plan.name / str(plan.meta["code_file"])).write_text(code, encoding="utf-8")
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(dest)
    return [dest / plan.name for plan in plans]
