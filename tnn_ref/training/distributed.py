"""torch.distributed as torchrun sets it up: which process this is, and the few collectives training needs.

torchrun (torch.distributed.run) starts one process per GPU (or per CPU worker) and hands each its
place through environment variables: WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. `setup`
reads them and joins the process group (NCCL on CUDA, gloo on CPU); without them it is a no-op and
everything below behaves as a world of one, so the same code runs with plain `python`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

Result = TypeVar("Result")


@dataclass(frozen=True)
class Place:
    """This process's rank among `world` processes, and its rank on its own machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device: str = "auto") -> Place:
    """Join the process group torchrun describes (once); returns this process's place.

    On CUDA each process takes GPU LOCAL_RANK as its current device, so `torch.device("cuda")` means it.
    """
    if not launched_by_torchrun():
        return Place()
    if not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            if local_rank >= torch.cuda.device_count():
                raise ValueError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} GPUs: "
                                 "start at most that many processes per node (--nproc_per_node)")
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return place()


def place() -> Place:
    """The place of this process in the current process group (a world of one when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Place()
    return Place(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def is_main_process() -> bool:
    """Rank 0, also before `setup` has joined the process group (torchrun's RANK says it then)."""
    if dist.is_available() and dist.is_initialized():
        return place().is_main
    return not launched_by_torchrun() or os.environ["RANK"] == "0"


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if place().world > 1:
        dist.barrier()


def sum_across_ranks(values: list[float], device) -> list[float]:
    """Element-wise sum of the same list of numbers held by every rank (the list itself when alone)."""
    if place().world == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)  # (k,)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def first_on_each_machine(fn: Callable[[], Result]) -> Result:
    """fn() in the first process of each machine, then in the others (which find its cache ready)."""
    here = place()
    if here.local_rank != 0:
        barrier()  # wait until this machine's first process has built what fn builds
    try:
        return fn()
    finally:
        if here.local_rank == 0:
            barrier()  # built: release the other processes of this machine
