"""Hydra composition and the typed profiles shared by the run side and the bundler.

`compose(overrides)` loads ``configs/config.yaml`` with Hydra overrides. The seed's append form
(``+env=kaggle``) is accepted for groups already in the defaults list, which plain Hydra refuses.
The typed dataclasses validate each group (`env_profile`, `target_profile`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from spectramind.errors import ConfigError

CONFIG_DIR_ENV = "SPECTRAMIND_CONFIG_DIR"
_T = TypeVar("_T")


@dataclass(frozen=True)
class EnvProfile:
    """Where a run happens: budget, paths, seeds and determinism switches."""

    name: str
    internet: bool
    budget_s: int
    safety_margin_s: int
    input_dir: str
    output_dir: str
    data_dir: str | None = None  # competition data; None means data.root
    seed: int = 1337
    deterministic: bool = True
    threads: int = 0
    cuda_required: bool = False


@dataclass(frozen=True)
class TargetProfile:
    """The Kaggle image a bundle is built for: interpreter, ABI, accepted platform tags, image manifest."""

    name: str
    python: str
    implementation: str
    abi: str
    glibc: str
    image: str
    platforms: list[str] = field(default_factory=list)
    cuda: str | None = None


def find_config_dir(start: Path | None = None) -> Path:
    """The configs directory: $SPECTRAMIND_CONFIG_DIR, else ``configs/`` in the nearest parent."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        path = Path(env)
        if not (path / "config.yaml").is_file():
            raise ConfigError(
                "no config.yaml in the config directory",
                where=f"{CONFIG_DIR_ENV}={env}",
                fix="point it at a directory holding config.yaml (the bundle's configs/ on Kaggle)",
            )
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "configs" / "config.yaml").is_file():
            return candidate / "configs"
    raise ConfigError(
        "could not find configs/config.yaml",
        where=f"{here} and its parents",
        fix=f"run from the project checkout, or set {CONFIG_DIR_ENV} to the configs directory",
    )


def _groups(config_dir: Path) -> set[str]:
    """The config groups: folders of configs/ holding YAML options."""
    return {p.name for p in config_dir.iterdir() if p.is_dir() and any(p.glob("*.yaml"))}


def normalise_overrides(overrides: list[str], config_dir: Path) -> list[str]:
    """Turn the seed's ``+group=option`` into ``group=option`` where the group is in the defaults."""
    groups = _groups(config_dir)
    out = []
    for item in overrides:
        key = item[1:].split("=", 1)[0]
        appended_group = item.startswith("+") and not item.startswith("++") and key in groups
        out.append(item[1:] if appended_group else item)
    return out


def compose(overrides: list[str] | None = None, config_dir: Path | None = None) -> DictConfig:
    """Compose the root config with Hydra overrides; errors name the bad override (exit 2)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    directory = (config_dir or find_config_dir()).resolve()
    given = list(overrides or [])
    items = normalise_overrides(given, directory)
    where = f"overrides {given} in {directory}"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(directory), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=items)
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc).split("\nConfig search path:")[0].strip()  # Hydra's words, not its search path
        raise ConfigError(
            f"bad configuration override: {message}",
            where=where,
            fix="use group=option with an option that exists under configs/<group>/, or key=value",
        ) from exc
    finally:
        GlobalHydra.instance().clear()
    removed = sorted(g for g in _groups(directory) if cfg.get(g) is None)
    if removed:
        raise ConfigError(
            f"bad configuration override: it removes the config group(s) {', '.join(removed)}, "
            "which every command reads",
            where=where,
            fix="pick another option instead (e.g. env=kaggle); ~ removes only keys you added",
        )
    return cfg


def config_key_error(exc: BaseException) -> ConfigError | None:
    """A command read a key the composed config lacks (an override removed it): the usage error it is."""
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(exc, OmegaConfBaseException):
        return None
    key = getattr(exc, "full_key", None) or "?"
    return ConfigError(
        f"the configuration has no usable key '{key}': {str(exc).splitlines()[0]}",
        where="the composed configuration (configs/ and the overrides)",
        fix=f"do not remove or blank '{key}' with an override; compare with configs/",
    )


def typed(schema: type[_T], node: Any, group: str) -> _T:
    """Validate one config group against its dataclass schema."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        # Resolved in place first: a group may interpolate keys outside itself (env.seed: ${seed}).
        values = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        base = OmegaConf.structured(schema)
        OmegaConf.set_readonly(base, False)  # frozen dataclasses make read-only nodes; merge first
        merged = OmegaConf.merge(base, values)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(
            f"config group '{group}' does not match its schema: {exc}",
            where=f"configs/{group}/",
            fix=f"compare the YAML with {schema.__name__} in {schema.__module__}",
        ) from exc
    if not isinstance(obj, schema):
        raise ConfigError(f"config group '{group}' is not a mapping", where=f"configs/{group}/")
    return obj


def env_profile(cfg: DictConfig) -> EnvProfile:
    return typed(EnvProfile, cfg.env, "env")


def target_profile(cfg: DictConfig) -> TargetProfile:
    return typed(TargetProfile, cfg.target, "target")


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config, key-sorted: the 'profile hash' logged by every run."""
    data = OmegaConf.to_container(cfg, resolve=True)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def save_snapshot(cfg: DictConfig, overrides: list[str], run_dir: Path) -> Path:
    """Write Hydra's ``.hydra/`` snapshot (merged config + overrides) into ``run_dir``."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml", resolve=True)
    OmegaConf.save(OmegaConf.create(list(overrides)), hydra_dir / "overrides.yaml")
    return hydra_dir
