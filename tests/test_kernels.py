"""Kaggle metadata: dataset-metadata.json rules and the generated kernel folders."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bundler import kernels
from bundler.config import BundleSettings, KernelShape
from bundler.errors import UsageError

BUNDLE = BundleSettings(
    dataset="someone/spectramind-v50-bundle",
    title="SpectraMind V50 offline bundle",
    license="CC0-1.0",
    competition="ariel-data-challenge-2025",
    out="dist/bundle",
    lock="requirements.lock",
    requirements_in="requirements.in",
    project_dir="src",
)


def test_dataset_metadata_holds_title_id_and_one_license() -> None:
    assert kernels.dataset_metadata(BUNDLE) == {
        "id": "someone/spectramind-v50-bundle",
        "licenses": [{"name": "CC0-1.0"}],
        "title": "SpectraMind V50 offline bundle",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": "short"}, "Kaggle requires 6-50"),
        ({"title": "x" * 51}, "Kaggle requires 6-50"),
        ({"dataset": "someone/abc"}, "6-50 characters"),
        ({"dataset": "someone/" + "a" * 51}, "6-50 characters"),
        ({"dataset": "someone/Upper_Case"}, "a-z, 0-9 and '-'"),
        ({"dataset": "no-owner-slug"}, "is not 'owner/slug'"),
        ({"license": "WTFPL"}, "unknown Kaggle license name"),
    ],
)
def test_kaggle_rules_are_enforced(change: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        kernels.dataset_metadata(replace(BUNDLE, **change))


def _template(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True)
    meta = {"id": "whoever/spectramind-v50-infer", "title": "SpectraMind V50 Infer", "code_file": "infer.py"}
    (folder / "kernel-metadata.json").write_text(json.dumps({**meta, **fields}))
    (folder / "infer.py").write_text("print('hi')\n")
    return folder


def test_kernel_folder_has_internet_off_bundle_and_competition(tmp_path: Path) -> None:
    _template(tmp_path / "kaggle" / "infer-k", enable_internet=True, dataset_sources=["x/other-data"])
    plans = kernels.plan_kernels(tmp_path / "kaggle", BUNDLE)
    written = kernels.write_kernels(plans, tmp_path / "dist" / "kernels")
    assert written == [tmp_path / "dist" / "kernels" / "infer-k"]
    raw = (written[0] / "kernel-metadata.json").read_text()
    assert '"enable_internet": false' in raw  # written explicitly, even over a template's true
    meta = json.loads(raw)
    assert meta["id"] == "someone/spectramind-v50-infer"  # owner follows the bundle dataset
    assert meta["dataset_sources"] == ["someone/spectramind-v50-bundle", "x/other-data"]
    assert meta["competition_sources"] == ["ariel-data-challenge-2025"]
    assert meta["enable_gpu"] is False and "machine_shape" not in meta
    assert meta["language"] == "python" and meta["kernel_type"] == "script"
    assert (written[0] / "infer.py").read_text() == "print('hi')\n"


@pytest.mark.parametrize(
    ("shape", "gpu", "machine"),
    [
        (KernelShape(accelerator="gpu-t4x2"), True, "NvidiaTeslaT4"),
        (KernelShape(accelerator="gpu-p100"), True, "NvidiaTeslaP100"),
        (KernelShape(accelerator="none", machine_shape="NvidiaL4"), True, "NvidiaL4"),
    ],
)
def test_accelerator_from_the_profile(tmp_path: Path, shape: KernelShape, gpu: bool, machine: str) -> None:
    _template(tmp_path / "k" / "infer-k")
    plan = kernels.plan_kernels(tmp_path / "k", replace(BUNDLE, kernel=shape))[0]
    assert plan.meta["enable_gpu"] is gpu and plan.meta["machine_shape"] == machine


def test_bad_kernel_definitions_fail_before_writing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown accelerator"):
        kernels.machine_shape(replace(BUNDLE, kernel=KernelShape(accelerator="quantum")))
    folder = _template(tmp_path / "k" / "infer-k")
    (folder / "infer.py").unlink()
    with pytest.raises(UsageError, match=r"code file 'infer\.py' does not exist"):
        kernels.plan_kernels(tmp_path / "k", BUNDLE)
    assert not (tmp_path / "dist").exists()


def test_repo_kernel_definition_and_its_script(repo: Path, tmp_path: Path) -> None:
    plans = kernels.plan_kernels(repo / "kaggle", BUNDLE)
    assert [p.name for p in plans] == ["spectramind-v50-infer", "spectramind-v50-train"]
    script = plans[0].code
    ast.parse(script.read_text())
    # The script finds the bundle at each depth Kaggle has used and hands over to kaggle-boot.sh.
    bundle = tmp_path / "input" / "datasets" / "someone" / "spectramind-v50-bundle"
    (bundle / "boot").mkdir(parents=True)
    (bundle / "MANIFEST.json").write_text("{}")
    (bundle / "boot" / "kaggle-boot.sh").write_text('echo "booted with $*"; exit 7\n')
    proc = subprocess.run(
        [sys.executable, str(script), "spectramind", "test"],
        env={"SPECTRAMIND_INPUT": str(tmp_path / "input"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 7 and "booted with spectramind test" in proc.stdout
    empty = subprocess.run(
        [sys.executable, str(script)],
        env={"SPECTRAMIND_INPUT": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert empty.returncode == 1 and "attach it" in empty.stderr


def test_kernels_pin_the_image_the_manifest_records(repo: Path, tmp_path: Path) -> None:
    """docker_image / docker_image_pinning_type reach Kaggle through the official client's push."""
    from spectramind.shim import MANIFEST_NAME, MANIFEST_SCHEMA
    from spectramind.shim.manifest import seal
    from tests.kaggle_server import USERNAME, KaggleServer
    from tests.test_push import make_bundle, push

    _template(tmp_path / "k" / "predict", id=f"{USERNAME}/spectramind-v50-predict")
    ref = "gcr.io/kaggle-images/python@sha256:" + "ab" * 32
    owned = replace(BUNDLE, dataset=f"{USERNAME}/spectramind-v50-bundle")
    plans = kernels.plan_kernels(tmp_path / "k", owned, ref)
    assert plans[0].meta["docker_image"] == ref and plans[0].meta["docker_image_pinning_type"] == "original"
    kernels.write_kernels(plans, tmp_path / "dist" / "kernels")
    bundle, _ = make_bundle(tmp_path)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())  # sealed as this checkout's boot reads it
    (bundle / MANIFEST_NAME).write_text(json.dumps(seal({**manifest, "schema": MANIFEST_SCHEMA})))
    with KaggleServer() as server:
        code, _, err = push(repo, tmp_path, bundle, server)
    assert code == 0, err
    saved = server.rpcs("SaveKernel")[0].body
    assert saved["dockerImage"] == ref
    assert saved["dockerImagePinningType"] == "original"
    assert "docker_image" not in kernels.plan_kernels(tmp_path / "k", owned)[0].meta  # nothing recorded


def _fake_bundle(input_dir: Path, boot_script: str) -> Path:
    bundle = input_dir / "spectramind-v50-bundle"
    (bundle / "boot").mkdir(parents=True)
    (bundle / "MANIFEST.json").write_text("{}")
    (bundle / "boot" / "kaggle-boot.sh").write_text(boot_script)
    return bundle


def test_training_kernel_has_gpu_competition_and_bundle_and_boots_train(repo: Path, tmp_path: Path) -> None:
    plan = next(p for p in kernels.plan_kernels(repo / "kaggle", BUNDLE) if p.name == "spectramind-v50-train")
    meta = plan.meta
    assert meta["enable_gpu"] is True and meta["enable_internet"] is False and meta["enable_tpu"] is False
    assert meta["dataset_sources"] == [BUNDLE.dataset]
    assert meta["competition_sources"] == [BUNDLE.competition]
    assert meta["id"] == "someone/spectramind-v50-train"
    _fake_bundle(tmp_path / "input", 'echo "booted with $*"; exit 0\n')
    env = {"SPECTRAMIND_INPUT": str(tmp_path / "input"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(plan.code)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "booted with spectramind train env=kaggle" in proc.stdout


def test_training_kernel_cut_by_the_budget_counts_as_done_only_with_saved_weights(
    repo: Path, tmp_path: Path
) -> None:
    code = repo / "kaggle" / "spectramind-v50-train" / "train.py"
    _fake_bundle(tmp_path / "input", "exit 124\n")
    out = tmp_path / "working"
    out.mkdir()
    env = {
        "SPECTRAMIND_INPUT": str(tmp_path / "input"),
        "SPECTRAMIND_OUTPUT": str(out),
        "PATH": "/usr/bin:/bin",
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(code)], env=env, capture_output=True, text=True, check=False
        )

    assert run().returncode == 124  # nothing saved: the kernel fails, Kaggle marks it ERROR
    (out / "train_summary.json").write_text("{}")
    done = run()
    assert done.returncode == 0 and "weights were saved" in done.stdout


def test_profile_accelerator_decides_over_the_template(tmp_path: Path) -> None:
    _template(tmp_path / "k" / "train-k", enable_gpu=True)
    assert kernels.plan_kernels(tmp_path / "k", BUNDLE)[0].meta["enable_gpu"] is True
    tpu = replace(BUNDLE, kernel=KernelShape(accelerator="tpu-v5e8"))
    meta = kernels.plan_kernels(tmp_path / "k", tpu)[0].meta
    assert meta["enable_gpu"] is False and meta["enable_tpu"] is True
