"""Multi-process runs with ``torch.distributed``: shard planets, gather the results.

``predict`` gathers the finished rows on rank 0; ``train`` shares the calibrated planets with every
rank and fits on rank 0 alone (the fit is tiny; calibration is the cost).

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


def gather(ctx: DistContext, obj: _T) -> list[_T]:
    """Every rank's ``obj`` on rank 0, in rank order; other ranks get ``[obj]`` back."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    gathered: list[_T | None] = [None] * ctx.world
    dist.gather_object(obj, gathered if ctx.is_main else None, dst=0)
    return [item for item in gathered if item is not None] if ctx.is_main else [obj]


def all_gather(ctx: DistContext, obj: _T) -> list[_T]:
    """Every rank's ``obj`` on every rank, in rank order."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    gathered: list[_T | None] = [None] * ctx.world
    dist.all_gather_object(gathered, obj)
    return [item for item in gathered if item is not None]


def unshard(parts: list[list[_T]]) -> list[_T]:
    """The inverse of `shard`: rank r's j-th item was item ``r + j * world``."""
    world = len(parts)
    out: list[_T] = [None] * sum(len(p) for p in parts)  # type: ignore[list-item]
    for rank, part in enumerate(parts):
        out[rank::world] = part
    return out


def shutdown(ctx: DistContext) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
