"""Data-parallel training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

A script calls ``init_distributed()`` once; after that the same ``fit`` trains on one shard of
every epoch per process, averages gradients (DDP), and all-reduces losses and metrics as
sample-weighted sums, so the history holds the numbers one process would report on the same
data. Only rank 0 prints, shows progress, saves checkpoints and writes run reports.

Launch from a shell or a notebook (``mp.spawn`` does not work from a notebook)::

    torchrun --standalone --nproc_per_node=2 scripts/train_distributed.py --epochs 2

``launch_command`` builds that command line (the chapter, the tests, the benchmarks and
``scripts/gpu_check.py`` all use it), and ``choose_processes`` picks the processes and backend.

Backends: gloo on CPUs, NCCL on GPUs (one GPU per process); with fewer GPUs than processes on
the machine (two processes on a one-GPU Colab) the processes run with gloo on the CPU.
``SyncBatchNorm`` does not run on the CPU, so batch-norm statistics stay per process; the
weights stay identical because DDP averages the gradients and broadcasts the buffers of rank 0
before every forward pass.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes in the job (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True for rank 0, which alone prints, saves checkpoints and writes reports."""
    return rank() == 0


def choose_processes(wanted: int = 2, *, gpus: int | None = None) -> tuple[int, str]:
    """How many processes a ``wanted``-process demonstration launches here, and the backend.

    With two or more GPUs: ``min(wanted, gpus)`` processes, one GPU each, NCCL. With one GPU or
    none: ``wanted`` processes with gloo on the CPU (NCCL cannot share one GPU between two
    processes). ``gpus`` defaults to ``torch.cuda.device_count()``.
    """
    if wanted < 1:
        raise ValueError(f"wanted must be at least 1 process, got {wanted}")
    gpus = torch.cuda.device_count() if gpus is None else gpus
    if gpus >= 2:
        return min(wanted, gpus), "nccl"
    return wanted, "gloo"


def launch_command(nproc: int, script: str | os.PathLike, *args: str,
                   torchrun: bool | None = None) -> list[str]:
    """The command that runs ``script`` with ``args`` in ``nproc`` processes (for subprocess).

    ``torchrun --standalone --nproc_per_node=N`` (as ``python -m torch.distributed.run``, so
    the current interpreter runs it); one process runs as plain ``python script`` unless
    ``torchrun=True``. If the rendezvous cannot resolve the host name, replace ``--standalone``
    by ``--rdzv-backend=c10d --rdzv-endpoint=127.0.0.1:29500``.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    if torchrun is False and nproc > 1:
        raise ValueError(f"{nproc} processes need torchrun; pass torchrun=True or None")
    launcher = [sys.executable]
    if torchrun or nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return [*launcher, str(script), *map(str, args)]


def _default_backend(local_world: int) -> str:
    """NCCL when every process on this machine can have a GPU of its own, else gloo."""
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= local_world \
        else "gloo"


def init_distributed(*, backend: str | None = None, timeout_s: float = 120.0,
                     threads: int | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    ``backend``: ``"nccl"`` (one GPU per process) or ``"gloo"`` (the CPU); by default NCCL when
    this machine has a GPU for each of its processes, else gloo (see ``choose_processes``).
    A rank that dies makes the others fail after at most ``timeout_s`` seconds instead of
    hanging (torchrun itself also stops the job when a worker exits with an error). torchrun
    sets ``OMP_NUM_THREADS=1``; on the CPU ``threads`` (default: cores / processes on this
    machine) gives each process its share of the cores instead.
    """
    needed = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    missing = [k for k in needed if k not in os.environ]
    if missing:
        raise RuntimeError(f"init_distributed() needs the environment that torchrun sets; "
                           f"missing {missing}. Launch with "
                           f"`torchrun --standalone --nproc_per_node=N script.py`.")
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    backend = backend or _default_backend(local_world)
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def shutdown() -> None:
    """Leave the process group (call at the end of a script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sums(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (unchanged in a single process)."""
    if not is_distributed():
        return list(values)
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def shard_slices(n_batches: int, batch_size: int, rank: int, world_size: int) -> list[slice]:
    """For each global batch of ``batch_size * world_size`` positions, this rank's slice."""
    global_batch = batch_size * world_size
    return [slice(b * global_batch + rank * batch_size, b * global_batch + (rank + 1) * batch_size)
            for b in range(n_batches)]
