"""Several JAX processes for one search: ``jax.distributed`` started from the command line.

``npu-dse search ... --coordinator HOST:PORT --num-processes N --process-id I`` starts each
of N processes (one per host, or several on one host) with the same arguments but its own
``--process-id``; process 0 listens at ``HOST:PORT``. The gradient search then splits its
starts over the processes (``dse.gradient``) and every process prints the same answer; only
process 0 writes the run folder. On CPUs the processes' collectives go over TCP (Gloo).
"""

from __future__ import annotations

import contextlib
import os
import sys

from hw.bounds import InputError

MAX_PROCESSES = 4096
TIMEOUT_S = 120
"""How long a process waits for the others to join, s."""


def check_args(coordinator, num_processes, process_id) -> bool:
    """True when the flags ask for several processes; one-line errors for a partial or bad
    set. ``num_processes`` 1 (or no flag) is one process."""
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given) or num_processes == 1 and process_id in (None, 0):
        return False
    if not all(given):
        raise InputError(
            "several processes need --coordinator HOST:PORT, --num-processes N and --process-id I"
        )
    host, sep, port = str(coordinator).rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"--coordinator must be HOST:PORT with a port in 1..65535, got {coordinator!r}"
        )
    if not 1 <= num_processes <= MAX_PROCESSES:
        raise InputError(f"--num-processes must be in 1..{MAX_PROCESSES}, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise InputError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
    return True


def start(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the group of processes (before any JAX computation of this process)."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=TIMEOUT_S,
    )


@contextlib.contextmanager
def stdout_to_stderr(active: bool = True):
    """File descriptor 1 pointed at 2 while active: the collectives' library reports its
    connections on the process's standard output, which must carry only the answer."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
