"""The real single-node Slurm cluster behind the tests marked ``slurm``.

`require_slurm` starts it with ``bin/slurm-up.sh`` (idempotent: a no-op when it is up) once per
session and skips the test with the script's reason when the cluster cannot start.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def _slurm_up() -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            ["bash", str(REPO / "bin" / "slurm-up.sh")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bin/slurm-up.sh did not finish: {exc}"
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def require_slurm() -> None:
    """Skip, saying why, unless a Slurm cluster with accounting (sinfo, sbatch, sacct) is up."""
    ok, message = _slurm_up()
    if not ok:
        pytest.skip(f"no Slurm cluster: {message}")


def sacct_states(job_id: str) -> dict[str, str]:
    """Slurm's own record of a job's allocations: {job id or array task: first word of State}."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job_id.split("_", maxsplit=1)[0]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if "|" in line}
