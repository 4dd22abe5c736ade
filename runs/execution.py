"""The seam where the lifecycle hands a recorded run to execution (installed into
``runs.lifecycle`` at start-up by ``runs.apps``; the lifecycle never imports this layer).

- ``run_claim_new``: a run executed by this process right after its insert is written already
  claimed (``runs.executor.run_claim_new``).
- ``run_dispatch``: blocking and child runs execute here, on the caller's thread, and the ended run
  is returned; a streaming run is handed over (today: a thread of this process) and None returns
  at once, the caller follows the run's events. This is the one place to change how interactive
  runs are executed (an executor process pool).
- ``stop_signal_local``: the stop event of a run executing in this process, set at once.
"""

from __future__ import annotations

import threading

from runs.executor import run_claim_new, run_execute, run_execute_in_thread, stop_signal_local
from runs.models import Run, RunMode

__all__ = ["run_claim_new", "run_dispatch", "stop_signal_local"]


def run_dispatch(run: Run, *, stop: threading.Event | None = None) -> Run | None:
    """Execute a run recorded claimed by this process (``run_claim_new``)."""
    if run.mode == RunMode.STREAMING and run.parent_run_id is None:
        run_execute_in_thread(run.pk, claimed=run)
        return None
    return run_execute(run.pk, claimed=run, stop_event=stop)
