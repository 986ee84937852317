"""``spectramind COMMAND env=hpc --multirun OVERRIDES...``: one Slurm job per run, through Hydra.

Hydra expands the sweep (``seed=1,2,3``) and its submitit launcher (``hydra/launcher:
submitit_slurm``, set by ``env=hpc``) submits one Slurm job per run. On the node each job runs the
command again as a child process (under ``torchrun`` when ``hpc.torchrun`` is on) with its own output
folder, ``<hydra.sweep.dir>/<job number>/``, which receives the weights and the command's outputs.
A job whose command fails exits non-zero, so Slurm records it FAILED; afterwards every job is reported with
its Slurm state (from ``sacct``) and log path, and any job not COMPLETED makes the command fail.

Hydra offers no public call that runs a multirun from another program's command line (``@hydra.main``
owns ``sys.argv`` and exits on errors), so this module drives the Hydra object that the public
``initialize_config_dir`` sets up; it is the one place that does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig

from spectramind.errors import ConfigError, SpectraMindError
from spectramind.runtime import log, print_json

if TYPE_CHECKING:
    from hydra._internal.hydra import Hydra

WRITES_WEIGHTS = {"train"}  # commands whose weights go into each job's folder (others read model.weights)
SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
# Slurm states of a job that has not ended yet (anything else is final).
_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


class JobsFailed(SpectraMindError):
    """Some jobs of a multirun did not complete; each is listed with its Slurm state and log."""

    def __init__(self, what: str, *, where: str, fix: str, jobs: list[JobReport]) -> None:
        self.jobs = jobs
        super().__init__(what, where=where, fix=fix)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "jobs": [asdict(job) for job in self.jobs]}


@dataclass(frozen=True)
class JobReport:
    """One Slurm job of a multirun, as Slurm and the job's folders tell it."""

    num: int  # Hydra's job number: its output folder is <sweep dir>/<num>
    slurm_job_id: str  # <array job id>_<index> (the plain job id when the sweep has one run)
    state: str  # sacct's State (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...)
    output_dir: str
    log: str  # the job's stderr (tracebacks); its stdout sits beside it as ..._log.out


def job_command(
    command: str, overrides: list[str], output_dir: Path, weights_name: str, nproc: int | None
) -> list[str]:
    """The child process one job runs: the command with the job's overrides, writing into its folder
    (``train`` writes its weights there too).

    ``nproc`` (torchrun on): ``torchrun --standalone --nproc-per-node=N`` starts N processes on the node.
    """
    runner = [sys.executable, "-m", "spectramind.cli"]
    if nproc is not None:
        torchrun = Path(sys.executable).with_name("torchrun")
        runner = [str(torchrun), "--standalone", f"--nproc-per-node={nproc}", "-m", "spectramind.cli"]
    own_weights = [f"model.weights={output_dir / weights_name}"] if command in WRITES_WEIGHTS else []
    return [*runner, command, *overrides, f"env.output_dir={output_dir}", *own_weights]


def _torchrun_processes(cfg: DictConfig, gpus_per_node: int | None) -> int | None:
    """How many processes torchrun starts in one job, or None when the profile does not ask for it."""
    hpc = cfg.get("hpc") or {}
    if not hpc.get("torchrun", False):
        return None
    return int(hpc.get("nproc_per_node") or gpus_per_node or 1)


def run_job(command: str, config_dir: str, cfg: DictConfig) -> dict[str, Any]:
    """Hydra's task function, run on the node inside the Slurm job: the command as a child process."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    nproc = _torchrun_processes(cfg, hydra.launcher.get("gpus_per_node"))
    argv = job_command(command, list(hydra.overrides.task), output_dir, Path(cfg.model.weights).name, nproc)
    print(f"[spectramind] job {hydra.job.num}: {' '.join(argv)}", file=sys.stderr, flush=True)
    env = {**os.environ, "SPECTRAMIND_CONFIG_DIR": config_dir}
    code = subprocess.run(argv, env=env, check=False).returncode
    if code != 0:
        # SystemExit passes through Hydra's run_job (which keeps an Exception as a result) and
        # submitit, so the job process ends non-zero and Slurm records the job FAILED.
        print(f"[spectramind] job {hydra.job.num}: spectramind {command} exited with {code}", file=sys.stderr)
        raise SystemExit(code)
    return {"output_dir": str(output_dir), "exit_code": code}


def _slurm_states(job_ids: list[str]) -> dict[str, str]:
    """sacct's State of each job (array tasks as <array id>_<index>), the first word of it."""
    if not job_ids:
        return {}
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    proc = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", *(f"-j{a}" for a in arrays)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SpectraMindError(
            f"sacct could not report the jobs: {proc.stderr.strip()}",
            where=f"sacct -j {','.join(arrays)}",
            fix="Slurm accounting (slurmdbd) must run; on this machine: bash bin/slurm-up.sh",
        )
    states = {}
    for line in proc.stdout.splitlines():
        job_id, _, state = line.partition("|")
        states[job_id] = state.split()[0] if state else "UNKNOWN"
    return states


def collect(sweep_dir: Path, submitit_folder: str, *, poll_s: float = 2.0) -> list[JobReport]:
    """Every job submitted into ``sweep_dir``, once Slurm says each has ended."""
    pattern = Path(submitit_folder.replace("%j", "*").replace("%A", "*").replace("%a", "*"))
    # A folder per job (<array id>_<index>, or <job id> when the sweep has one run) holds its pickle;
    # an array's own folder holds only the sbatch script.
    found = pattern.parent.glob(pattern.name)
    folders = {p.name: p for p in found if (p / f"{p.name}_submitted.pkl").is_file()}
    states = _slurm_states(list(folders))
    while any(states.get(job_id, "PENDING") in _ACTIVE for job_id in folders):
        time.sleep(poll_s)  # one job failed early and Hydra stopped waiting: let the others end
        states = _slurm_states(list(folders))
    jobs = []
    for job_id, folder in folders.items():
        num = int(job_id.rsplit("_", 1)[1]) if "_" in job_id else 0
        log_path = folder / f"{job_id}_0_log.err"
        jobs.append(JobReport(num, job_id, states[job_id], str(sweep_dir / str(num)), str(log_path)))
    return sorted(jobs, key=lambda job: job.num)


def _parse(command: str, argv: list[str]) -> tuple[bool, list[str]]:
    from spectramind.cli import command_parser

    args = command_parser(command).parse_intermixed_args(argv)
    return bool(args.json), list(args.overrides)


def first_run(overrides: list[str]) -> list[str] | None:
    """The overrides of the sweep's first run (``seed=1,2,3`` -> ``seed=1``), or None where a sweep
    cannot be listed without the config (glob sweeps): composing it checks every key before submitting.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    first = []
    try:
        for override in OverridesParser.create().parse_overrides(overrides):
            if not override.is_sweep_override():
                first.append(str(override.input_line))
                continue
            value = next(iter(override.sweep_string_iterator()))
            prefix = override.get_key_element()
            first.append(f"{prefix}={value}")
    except (HydraException, StopIteration, ValueError):
        return None
    return first


def main(command: str, argv: list[str]) -> int:
    """``spectramind COMMAND --multirun OVERRIDES...``: submit, wait, report every job."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    from spectramind.config import compose, find_config_dir, normalise_overrides

    as_json, given = _parse(command, argv)
    config_dir = find_config_dir()
    overrides = normalise_overrides(given, config_dir)
    first = first_run(overrides)
    if first is not None:
        compose(first, config_dir)  # a bad key fails here, named, instead of in every job
    where = f"overrides {given} in {config_dir}"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir), version_base=None, job_name=f"spectramind-{command}"):
            hydra = cast("Hydra", GlobalHydra.instance().hydra)  # set by initialize_config_dir
            cfg = hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN)
            launcher = str(cfg.hydra.launcher.get("_target_"))
            if launcher != SLURM_LAUNCHER:
                raise ConfigError(
                    "--multirun submits Slurm jobs, and this configuration has no Slurm launcher",
                    where=f"{where}: hydra/launcher is {launcher}",
                    fix="add env=hpc (its launcher is hydra/launcher: submitit_slurm)",
                )
            if cfg.get("hpc", {}).get("torchrun") and int(cfg.hydra.launcher.nodes) > 1:
                raise ConfigError(
                    "a torchrun job runs on one node (torchrun --standalone), and this asks for "
                    f"{cfg.hydra.launcher.nodes}",
                    where=where,
                    fix="keep hydra.launcher.nodes=1 with hpc.torchrun=true",
                )
            # The sweep folder, fixed once (its default holds the time) so the report finds the jobs.
            sweep_dir = Path(str(cfg.hydra.sweep.dir)).resolve()
            overrides = [*overrides, f"hydra.sweep.dir={sweep_dir}"]
            cfg = hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN)
            submitit_folder = str(cfg.hydra.launcher.submitit_folder)
            log(f"{command}: submitting a multirun to Slurm; jobs write to {sweep_dir}")
            from submitit.core.utils import UncompletedJobError

            try:
                task = partial(run_job, command, str(config_dir))
                hydra.multirun("config", task, overrides, with_log_configuration=False)
            except UncompletedJobError:  # a job failed or was cancelled: the report below says which
                pass
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc).split("\nConfig search path:")[0].strip()
        raise ConfigError(
            f"bad configuration override: {message}",
            where=where,
            fix="env=hpc needs the hpc extra (pip install 'spectramind-v50-dev[hpc]'); "
            "check the override names against configs/",
        ) from exc
    finally:
        GlobalHydra.instance().clear()
    jobs = collect(sweep_dir, submitit_folder)
    for job in jobs:
        log(f"{command}: job {job.num} (Slurm {job.slurm_job_id}) {job.state}: {job.output_dir}")
        log(f"{command}:   log {job.log}")
    bad = [job for job in jobs if job.state != "COMPLETED"]
    if bad or not jobs:
        listed = "; ".join(f"job {j.num} (Slurm {j.slurm_job_id}) {j.state}, log {j.log}" for j in bad)
        raise JobsFailed(
            f"{len(bad)} of {len(jobs)} Slurm jobs did not complete: {listed or 'none was submitted'}",
            where=str(sweep_dir),
            fix="read each job's log; rerun those jobs with their overrides (in <job>/.hydra/overrides.yaml)",
            jobs=jobs,
        )
    if as_json:
        print_json(
            {"command": command, "ok": True, "sweep_dir": str(sweep_dir), "jobs": [asdict(j) for j in jobs]}
        )
    return 0
