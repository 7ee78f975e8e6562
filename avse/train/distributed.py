"""Device choice and DistributedDataParallel (DDP) set-up for training.

``--ngpu 0``: CPU, one process. ``--ngpu 1``: ``cuda:0``, one process. ``--ngpu N > 1``:
one process per GPU launched by ``torchrun --standalone --nproc_per_node N`` (what
stage 4 of ``avse.sh`` does); the process group is initialised from the environment
variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), with NCCL on GPUs (gloo on CPU, used only for testing). Only rank
0 writes files; every rank draws its own slice of each step's examples
(:class:`avse.train.dataset.StepSampler`).
"""
import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from avse.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    """Where this process runs: ``rank`` of ``world_size`` on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(ngpu: int = 0, backend: str | None = None) -> DistInfo:
    """Pick the device and, for ``ngpu > 1`` (or a torchrun launch), join the process group.

    Raises:
        InputError: ``ngpu > 0`` without CUDA, or ``ngpu > 1`` without torchrun.
    """
    ngpu = int(ngpu)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if ngpu < 0:
        raise InputError(f"--ngpu must be >= 0, got {ngpu}")
    if ngpu > 0 and not torch.cuda.is_available():
        raise InputError(f"--ngpu {ngpu} but CUDA is not available; use --ngpu 0 for CPU training")
    if ngpu > 1 and world == 1:
        raise InputError(f"--ngpu {ngpu}: launch with torchrun --standalone --nproc_per_node {ngpu} "
                         "(avse.sh does this for --ngpu > 1)")
    if ngpu > 1 and world != ngpu:
        log.warning("--ngpu %d but torchrun started %d processes; using %d", ngpu, world, world)
    if world == 1:
        device = torch.device("cuda:0" if ngpu >= 1 else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return DistInfo(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if ngpu >= 1:
        device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://",
                                timeout=datetime.timedelta(minutes=30))
    log.info("DDP rank %d/%d on %s (%s)", rank, world, device, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device, initialized=True)


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``model`` wrapped in DDP when several processes train it, else itself."""
    if not info.initialized:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids, output_device=ids[0] if ids else None)


def mean_over_ranks(values: list[float], info: DistInfo) -> list[float]:
    """Average a few floats over all ranks (identity in one process)."""
    if not info.initialized:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / info.world_size).tolist()


def barrier(info: DistInfo) -> None:
    if info.initialized:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.initialized and dist.is_initialized():
        dist.destroy_process_group()
