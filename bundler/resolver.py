"""The one adapter around ``uv pip compile``: resolve requirements for the *target* interpreter.

pip-compile resolves for the interpreter running it; uv resolves for any Python version and
platform (``--python-version``, ``--python-platform``) and still writes the pip-tools format
(``name==version \\`` + ``--hash=sha256:`` lines, ``# via`` comments), so the bundler uses uv.

Isolation: uv runs with ``--no-config`` plus a generated ``--config-file`` (user and system
``uv.toml`` files are ignored), every ``UV_*``/``PIP_*`` variable dropped from its environment, its
own cache directory, Python downloads off and an explicit ``--index-url``. The result then
depends on the inputs and the index, not on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from bundler import tempdirs
from bundler.errors import BundlerError, UsageError
from spectramind.config import TargetProfile

# manylinux levels uv accepts in --python-platform (uv 0.5 .. 0.13); a target's glibc maps to the
# highest level at or below it.
_UV_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
_UV_MACHINES = ("x86_64", "aarch64")
# Variables kept for uv although they start with UV_: they say how to trust TLS, not what to resolve.
_KEEP_UV_VARS = ("UV_SYSTEM_CERTS", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


class ResolutionError(BundlerError):
    """uv could not resolve the requirements; ``kind`` is ``conflict``, ``network`` or ``other``."""

    def __init__(self, what: str, *, kind: str, reason: str, where: str | None, fix: str) -> None:
        super().__init__(what, where=where, fix=fix)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class StaticMetadata:
    """Requires-Dist that uv must take as authoritative for one ``name==version``."""

    name: str
    version: str
    requires_dist: tuple[str, ...]


@dataclass(frozen=True)
class ResolveRequest:
    """One resolution: requirements file, target interpreter/platform, index, soft and hard pins."""

    requirements: Path
    python_version: str  # "3.11.7" (markers use the full version)
    python_platform: str  # uv spelling, e.g. "x86_64-manylinux_2_36"
    index_url: str
    cache_dir: Path
    constraints: tuple[str, ...] = ()  # "name==version": hard (resolution fails if impossible)
    preferences: tuple[str, ...] = ()  # "name==version": chosen first whenever compatible
    metadata: tuple[StaticMetadata, ...] = ()
    constraint_label: str = "image"  # how `# via -c <tempfile>` annotations are rewritten
    compile_command: str = "python -m bundler lock"


@dataclass(frozen=True)
class Resolution:
    """uv's pip-tools output plus the pins it holds (canonical name -> version) and their ``# via``."""

    text: str
    pins: dict[str, str]
    via: dict[str, tuple[str, ...]]


def uv_binary() -> str:
    """The uv executable: the one next to this Python first (the dev install), then PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        raise BundlerError(
            "uv is not installed; the lock resolves with `uv pip compile`",
            where="PATH",
            fix="pip install uv (it is in the dev extras: pip install -e .[dev])",
        )
    return found


def uv_version() -> str:
    out = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=False)
    parts = out.stdout.split()
    return parts[1] if len(parts) > 1 else "unknown"


def uv_platform(target: TargetProfile) -> str:
    """The ``--python-platform`` value for a target: its machine and the best manylinux level."""
    machine = next((m for m in _UV_MACHINES for p in target.platforms if p.endswith(f"_{m}")), None)
    try:
        major, minor = (int(x) for x in str(target.glibc).split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    levels = [level for level in _UV_MANYLINUX if level <= minor]
    if machine is None or major != 2 or not levels:
        raise UsageError(
            f"target '{target.name}' (glibc {target.glibc}, platforms {list(target.platforms)[:2]}...) "
            "has no uv platform",
            where=f"configs/target/{target.name}.yaml",
            fix="use a glibc >= 2.17 x86_64 or aarch64 target with manylinux_* platform tags",
        )
    level = levels[-1]
    return f"{machine}-manylinux2014" if level == 17 else f"{machine}-manylinux_2_{level}"


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _config_toml(metadata: tuple[StaticMetadata, ...]) -> str:
    """uv.toml with ``[[dependency-metadata]]`` entries (extras recovered from the markers)."""
    out = ["# generated by bundler.resolver: authoritative metadata for image packages\n"]
    for item in metadata:
        extras = sorted(set(re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", " ".join(item.requires_dist))))
        out.append("[[dependency-metadata]]\n")
        out.append(f"name = {_toml_str(item.name)}\n")
        out.append(f"version = {_toml_str(item.version)}\n")
        out.append(f"requires-dist = [{', '.join(_toml_str(r) for r in item.requires_dist)}]\n")
        out.append(f"provides-extras = [{', '.join(_toml_str(e) for e in extras)}]\n\n")
    return "".join(out)


def _environment(cache_dir: Path, config_home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith(("UV_", "PIP_")) and k not in _KEEP_UV_VARS)
    }
    env.update(
        UV_CACHE_DIR=str(cache_dir),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        XDG_CONFIG_HOME=str(config_home),  # belt and braces next to --no-config
        PIP_CONFIG_FILE=os.devnull,  # sdist metadata builds may call pip
    )
    return env


def parse_pins(text: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Pins and ``# via`` sources from pip-tools text."""
    pins: dict[str, str] = {}
    via: dict[str, list[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _PIN.match(line)
        if match:
            current = str(canonicalize_name(match.group("name")))
            pins[current] = match.group("version")
            via[current] = []
        elif current and line.startswith("# via"):
            rest = line.removeprefix("# via").strip()
            if rest:
                via[current].append(rest)
        elif current and line.startswith("#   "):
            via[current].append(line.removeprefix("#").strip())
        elif not line.startswith("--hash") and not line.startswith("#"):
            current = None
    return pins, {k: tuple(v) for k, v in via.items()}


def _reason(stderr: str) -> str:
    text = _ANSI.sub("", stderr).strip()
    start = text.find("error:")
    text = text[start:] if start >= 0 else text
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:25])[:2500]


def _failure(request: ResolveRequest, stderr: str) -> ResolutionError:
    reason = _reason(stderr)
    if re.search(r"No solution found|unsatisfiable|not found in the package registry|no version", reason):
        return ResolutionError(
            f"the requirements cannot be resolved for python {request.python_version} on "
            f"{request.python_platform}: {reason}",
            kind="conflict",
            reason=reason,
            where=str(request.requirements),
            fix="relax or fix the conflicting requirement(s) named above in requirements.in, "
            "or choose another target profile (target=NAME)",
        )
    if re.search(r"Failed to fetch|Connect|tcp connect|dns error|timed out|certificate", reason):
        return ResolutionError(
            f"could not reach the package index: {reason}",
            kind="network",
            reason=reason,
            where=request.index_url,
            fix="check the network/proxy and bundle.index_url (override: bundle.index_url=URL)",
        )
    return ResolutionError(
        f"uv pip compile failed: {reason}",
        kind="other",
        reason=reason,
        where=str(request.requirements),
        fix="read uv's message above; check requirements.in and the target profile",
    )


def resolve(request: ResolveRequest) -> Resolution:
    """Run ``uv pip compile --generate-hashes`` for the request's target; pip-tools text back."""
    request.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempdirs.temporary("spectramind-resolve-") as work:
        (work / "xdg").mkdir()
        config = work / "uv.toml"
        config.write_text(_config_toml(request.metadata), encoding="utf-8")
        out = work / "resolved.txt"
        # uv treats the pins of an existing output file as preferences (like pip-compile does).
        out.write_text("".join(f"{p}\n" for p in request.preferences), encoding="utf-8")
        cmd = [
            uv_binary(), "--no-config", "--color", "never",
            "pip", "compile", request.requirements.name,
            "--config-file", str(config),
            "--python-version", request.python_version,
            "--python-platform", request.python_platform,
            "--index-url", request.index_url,
            "--generate-hashes",
            "--custom-compile-command", request.compile_command,
            "--output-file", str(out),
        ]  # fmt: skip
        constraints = work / "image-pins.txt"
        if request.constraints:
            constraints.write_text("".join(f"{c}\n" for c in request.constraints), encoding="utf-8")
            cmd += ["--constraint", str(constraints)]
        proc = subprocess.run(
            cmd,
            cwd=request.requirements.parent,  # `# via -r requirements.in`: no absolute paths
            env=_environment(request.cache_dir, work / "xdg"),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise _failure(request, proc.stderr)
        text = out.read_text(encoding="utf-8").replace(f"-c {constraints}", request.constraint_label)
    pins, via = parse_pins(text)
    return Resolution(text=text, pins=pins, via=via)
