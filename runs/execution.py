"""The seam where the lifecycle hands a recorded run to execution (installed into
``runs.lifecycle`` at start-up by ``runs.apps``; the lifecycle never imports this layer).

- ``run_claim_new``: a run executed right after its insert is written already claimed by this
  process (``runs.executor.run_claim_new``); the executor process it is handed to adopts the lease.
- ``run_dispatch``: a blocking run executes in an executor process of this process's pool
  (``runs.pool``: the execution tier) and the ended run is returned; a streaming run is handed to
  the pool and None returns at once, the caller follows the run's events (they come back over the
  pool's pipe); a child run executes on its parent's thread, inside the parent's executor.
  ``WEFT_EXECUTORS=0`` executes here instead (tests and debugging only).
- ``stop_signal_local``: the stop event of a run executing in this process or its pool, set at once.
"""

from __future__ import annotations

import threading

from runs.executor import run_claim_new, run_execute, stop_signal_local
from runs.models import Run, RunMode
from runs.pool import run_blocking, run_hand_over

__all__ = ["run_claim_new", "run_dispatch", "stop_signal_local"]


def run_dispatch(run: Run, *, stop: threading.Event | None = None) -> Run | None:
    """Execute a run recorded claimed by this process (``run_claim_new``)."""
    if run.parent_run_id is not None:
        return run_execute(run.pk, claimed=run, stop_event=stop)
    if run.mode == RunMode.STREAMING:
        run_hand_over(run)
        return None
    return run_blocking(run)
