"""Build-side settings: the `bundle` config group as a typed dataclass, plus the composed profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from bundler.errors import UsageError
from spectramind.config import EnvProfile, TargetProfile, compose, env_profile, target_profile, typed


@dataclass  # nested schemas stay mutable: OmegaConf marks frozen ones read-only and cannot merge
class Limits:
    max_top_level_entries: int = 50
    max_total_bytes: int = 20 * 1024**3
    max_files: int = 50_000


@dataclass
class KernelShape:
    accelerator: str = "none"
    machine_shape: str | None = None


@dataclass(frozen=True)
class BundleSettings:
    """What to pack and where (configs/bundle/*.yaml)."""

    dataset: str
    title: str
    license: str
    competition: str
    out: str
    lock: str
    requirements_in: str
    project_dir: str
    configs: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    kernels_dir: str = "kaggle"
    install: str = "site"  # site: the delta ships installed; wheels: boot installs wheels/ (fallback)
    pyc: bool = (
        True  # ship .pyc compiled for the target in site/ (false: smaller upload, compiled at run time)
    )
    allow_clobber: bool = False
    index_url: str = "https://pypi.org/simple"
    cache_dir: str = "~/.cache/spectramind-bundler"
    limits: Limits = field(default_factory=Limits)
    kernel: KernelShape = field(default_factory=KernelShape)
    self_contained: bool = False  # ship what the image has too (not its own builds: +cpu, CUDA libs)
    allow_missing_weights: bool = False  # absent weights entries: a warning, not an error
    extras: list[str] = field(default_factory=list)  # optional extras shipped (requirements-NAME.in)


@dataclass(frozen=True)
class Settings:
    """Everything a build-side command needs, resolved once from the composed config."""

    root: Path  # the project checkout (parent of configs/)
    config_dir: Path
    cfg: DictConfig
    env: EnvProfile
    target: TargetProfile
    bundle: BundleSettings

    def path(self, value: str) -> Path:
        """A config path made absolute against the project root (``~`` expanded)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def image_manifest(self) -> Path:
        return self.config_dir / "images" / f"{self.target.image}.json"


def load(overrides: list[str], config_dir: str | None = None) -> Settings:
    """Compose the config with Hydra overrides and validate the groups the bundler uses."""
    from spectramind.config import find_config_dir

    directory = Path(config_dir).resolve() if config_dir else find_config_dir()
    cfg = compose(overrides, directory)
    return Settings(
        root=directory.parent,
        config_dir=directory,
        cfg=cfg,
        env=env_profile(cfg),
        target=target_profile(cfg),
        bundle=_checked(typed(BundleSettings, cfg.bundle, "bundle")),
    )


INSTALL_MODES = ("site", "wheels")


def _checked(bundle: BundleSettings) -> BundleSettings:
    if bundle.install not in INSTALL_MODES:
        raise UsageError(
            f"bundle.install={bundle.install!r} is not one of {', '.join(INSTALL_MODES)}",
            where="configs/bundle (install)",
            fix="bundle.install=site (the delta ships installed; the default) or bundle.install=wheels "
            "(boot installs the wheels with the image's uv or pip)",
        )
    return bundle
