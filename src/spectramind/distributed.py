"""Multi-process inference with ``torch.distributed``: shard planets, gather rows on rank 0.

Launched by ``torchrun --nproc-per-node N -m spectramind.cli predict ...`` (which sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). Backend: NCCL when every rank has a CUDA device (the
Kaggle T4 x2), gloo otherwise. Planets are dealt round-robin; rank 0 merges the finished rows
into the submission in the planets' canonical order, so the file matches a single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

from spectramind.runtime import log

_T = TypeVar("_T")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    active: bool = False  # a process group was initialised here

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(enabled: bool) -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1) or when ``enabled``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not enabled:
        return DistContext()
    import torch
    import torch.distributed as dist

    if world <= 1:
        return DistContext()  # asked for, but launched without torchrun: run single-process
    use_nccl = torch.cuda.is_available() and torch.cuda.device_count() >= world
    if use_nccl:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), True)
    log(f"distributed: rank {ctx.rank}/{ctx.world} ({'nccl' if use_nccl else 'gloo'})")
    return ctx


def shard(items: list[_T], ctx: DistContext) -> list[_T]:
    """This rank's share: every ``world``-th item starting at ``rank``."""
    return items[ctx.rank :: ctx.world]


def gather_rows(ctx: DistContext, rows: dict[str, str]) -> dict[str, str]:
    """All ranks' rows on rank 0 (other ranks get their own rows back)."""
    if not ctx.active:
        return rows
    import torch.distributed as dist

    gathered: list[dict[str, str] | None] = [None] * ctx.world if ctx.is_main else []
    dist.gather_object(rows, gathered if ctx.is_main else None, dst=0)
    if not ctx.is_main:
        return rows
    merged: dict[str, str] = {}
    for part in gathered:
        merged.update(part or {})
    return merged


def shutdown(ctx: DistContext) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
