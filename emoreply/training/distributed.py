"""Multi-process launches: one command gives a real data-parallel run on CPUs (gloo) and GPUs (NCCL).

``accelerate launch --multi_gpu --num_processes N script.py`` starts N processes with torchrun's
environment. On a machine without GPUs accelerate then sets up N independent single-process runs
(``DistributedType.NO``) unless ``ACCELERATE_USE_CPU`` is set; :func:`start_processes` sets it, so
the same command trains on N CPU processes over gloo, and refuses launches that would not be
distributed (accelerate's plain launcher silently starts one process for ``--num_processes N`` on a
machine without several GPUs).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import torch

WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_SIZE_VARS = ("LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")
# Process k > 0 offsets its seeds by k * this: its own dropout and augmentation draws (process 0 keeps
# the single-process run's, so 1-process runs are unchanged).
PROCESS_SEED_STRIDE = 7919


def _env_int(names: tuple[str, ...], default: int = 1) -> int:
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


def launched_processes() -> int:
    """How many processes the launcher started (torchrun or MPI environment), 1 when not launched."""
    return _env_int(WORLD_SIZE_VARS)


def launch_command(script: str | None = None) -> str:
    """The command that gives a real N-process run of ``script`` on this kind of machine."""
    script = script or sys.argv[0]
    return f"accelerate launch --multi_gpu --num_processes N {script} ..."


def _has_parallel_device() -> bool:
    """A device kind accelerate runs one process per device on (CUDA, XPU, NPU, MLU, MUSA, HPU)."""
    if torch.cuda.is_available():
        return True
    import accelerate.utils as au

    for name in ("is_xpu_available", "is_npu_available", "is_mlu_available", "is_musa_available", "is_hpu_available"):
        check = getattr(au, name, None)
        if check is not None and check():
            return True
    return False


def launch_problem(script: str | None = None) -> str | None:
    """Why this launch would not give a real multi-process run (None when it would, or is one process)."""
    n = launched_processes()
    if n == 1 and os.environ.get("MASTER_ADDR") and "ACCELERATE_USE_CPU" in os.environ:
        # accelerate's plain launcher sets MASTER_ADDR only when asked for several processes, yet starts one.
        return (
            "accelerate launch started 1 process although several were asked for: without --multi_gpu its "
            f"launcher runs a single process on a machine without several GPUs. Run instead: {launch_command(script)}"
            " (gloo on CPUs, NCCL on GPUs), or drop --num_processes for one process."
        )
    local = _env_int(LOCAL_SIZE_VARS, n)
    if n > 1 and torch.cuda.is_available() and torch.cuda.device_count() < local:
        return (
            f"{local} processes on this machine but {torch.cuda.device_count()} GPU(s): launch with "
            f"--num_processes {torch.cuda.device_count()}, or set ACCELERATE_USE_CPU=true to train on CPU processes."
        )
    return None


def start_processes(script: str | None = None):
    """Join the launched processes (gloo on CPUs when there is no GPU) or exit with what to run instead.

    Call before the first ``Accelerator()``: it reads ``ACCELERATE_USE_CPU`` set here. Non-main
    processes log warnings only, so logs are written once.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    if problem := launch_problem(script):
        raise SystemExit(problem)
    n = launched_processes()
    if n > 1 and not _has_parallel_device():
        os.environ["ACCELERATE_USE_CPU"] = "true"  # else accelerate runs N independent copies (DistributedType.NO)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if n > 1 and state.num_processes != n:
        raise SystemExit(
            f"The launcher started {n} processes but accelerate set up {state.distributed_type} with "
            f"{state.num_processes} process(es): each would train alone on all the data. Run: {launch_command(script)}"
        )
    if not state.is_main_process:
        logging.getLogger().setLevel(logging.WARNING)
        for name in ("transformers", "datasets"):
            logging.getLogger(name).setLevel(logging.ERROR)
    return state


def process_seed(seed: int, process_index: int) -> int:
    """A seed of this process's own: process 0 keeps ``seed`` (single-process runs are unchanged)."""
    return seed + PROCESS_SEED_STRIDE * process_index


def reduce_sums(accelerator, *values: float) -> list[float]:
    """Sums over all processes of per-process numbers (loss sums, sample counts) for epoch means."""
    if accelerator.num_processes == 1:
        return list(values)
    totals = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(totals, reduction="sum").tolist()


def map_sharded(accelerator, fn: Callable[[torch.Tensor], torch.Tensor], items: torch.Tensor) -> torch.Tensor:
    """``fn`` on this process's contiguous share of ``items``; the shares' results concatenated in order.

    Every process gets the full result (the same early-stopping decisions everywhere).
    """
    if accelerator.num_processes == 1:
        return fn(items)
    from accelerate.utils import gather_object

    with accelerator.split_between_processes(items) as share:
        part = fn(share).cpu()
    return torch.cat(gather_object([part]))
