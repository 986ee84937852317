"""Hydra profiles, typed schemas, overrides (both forms), snapshots, and the error family."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bundler.config import load
from bundler.errors import BundlerError, UsageError, VerificationError, redact
from spectramind.config import compose, config_hash, env_profile, save_snapshot, target_profile
from spectramind.errors import SpectraMindError


def test_kaggle_profile_is_offline_with_a_nine_hour_budget(repo: Path) -> None:
    env = env_profile(compose(["env=kaggle"], repo / "configs"))
    assert (env.internet, env.budget_s, env.input_dir, env.output_dir) == (
        False,
        32400,
        "/kaggle/input",
        "/kaggle/working",
    )
    assert 0 < env.safety_margin_s < env.budget_s


@pytest.mark.parametrize("profile", ["default", "kaggle", "ci", "docker"])
def test_every_env_profile_matches_the_schema(repo: Path, profile: str) -> None:
    env = env_profile(compose([f"env={profile}"], repo / "configs"))
    assert env.name == profile
    assert env.deterministic


def test_append_form_of_the_seed_equals_the_plain_override(repo: Path) -> None:
    configs = repo / "configs"
    seed_form = compose(["+env=kaggle", "+data=nominal", "+model=v50"], configs)
    plain = compose(["env=kaggle", "data=nominal", "model=v50"], configs)
    assert OmegaConf.to_container(seed_form) == OmegaConf.to_container(plain)
    assert seed_form.data.name == "nominal"


def test_two_target_profiles_for_the_two_kaggle_images(repo: Path) -> None:
    configs = repo / "configs"
    ariel = target_profile(compose(["target=ariel2025-cp311"], configs))
    current = target_profile(compose(["target=kaggle-cp312"], configs))
    assert (ariel.python, ariel.abi, current.python, current.abi) == ("3.11", "cp311", "3.12", "cp312")
    # every manylinux level the image's glibc allows is listed, newest first, plus the legacy aliases
    assert ariel.platforms[0] == "manylinux_2_35_x86_64"
    assert "manylinux_2_17_x86_64" in ariel.platforms
    assert "manylinux2014_x86_64" in ariel.platforms
    assert "manylinux_2_36_x86_64" not in ariel.platforms


def test_bundle_settings_take_command_line_overrides(repo: Path, tmp_path: Path) -> None:
    settings = load(
        ["env=kaggle", f"bundle.out={tmp_path}/b", "bundle.install=wheels"], str(repo / "configs")
    )
    assert settings.path(settings.bundle.out) == tmp_path / "b"
    assert settings.bundle.install == "wheels"
    assert settings.env.name == "kaggle"
    assert settings.image_manifest == repo / "configs" / "images" / "kaggle-sim-cp311.json"


def test_unknown_install_mode_is_a_usage_error(repo: Path) -> None:
    from bundler.errors import UsageError

    with pytest.raises(UsageError, match=r"bundle\.install='copy' is not one of site, wheels"):
        load(["bundle.install=copy"], str(repo / "configs"))


def test_unknown_option_is_an_error_naming_the_override(repo: Path) -> None:
    with pytest.raises(SpectraMindError) as info:
        compose(["env=nowhere"], repo / "configs")
    assert "env=nowhere" in str(info.value)
    assert info.value.fix


def test_a_wrongly_typed_value_is_rejected_by_the_schema(repo: Path) -> None:
    cfg = compose(["env.budget_s=nine-hours"], repo / "configs")
    with pytest.raises(SpectraMindError) as info:
        env_profile(cfg)
    assert "env" in info.value.what
    assert "budget_s" in info.value.what


def test_config_hash_is_stable_and_sensitive(repo: Path) -> None:
    configs = repo / "configs"
    a, b = compose([], configs), compose([], configs)
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(compose(["env.seed=1"], configs))


def test_snapshot_is_what_hydra_would_save(repo: Path, tmp_path: Path) -> None:
    cfg = compose(["env=ci"], repo / "configs")
    hydra_dir = save_snapshot(cfg, ["env=ci"], tmp_path)
    assert OmegaConf.load(hydra_dir / "config.yaml").env.name == "ci"
    assert list(OmegaConf.load(hydra_dir / "overrides.yaml")) == ["env=ci"]


def test_errors_carry_exit_codes_and_never_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef0123")
    error = BundlerError(
        "upload failed with key 0123456789abcdef0123", fix="set KAGGLE_KEY=0123456789abcdef0123"
    )
    assert "0123456789abcdef" not in error.render()
    assert (BundlerError.exit_code, UsageError.exit_code, VerificationError.exit_code) == (1, 2, 3)
    assert redact('{"username": "me", "key": "s3cr3tvalue"}') == '{"username": "me", "key": "***"}'


def test_cli_usage_error_and_bad_override_exit_2(repo: Path) -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "bundler", "nope"], cwd=repo, capture_output=True, check=False
    )
    assert usage.returncode == 2
    bad = subprocess.run(
        [sys.executable, "-m", "bundler", "lock", "--check", "--json", "target=missing-target"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2  # a bad override is a usage error
    assert "target=missing-target" in bad.stdout
