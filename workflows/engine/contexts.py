"""What a node is handed when it runs: the ``NodeContext`` the scheduler builds for one node
execution (its resolved config, template resolution and CEL evaluation in the node's scope, the
run's interruptible wait, the platform's services and clock)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workflows.engine.frames import Exec, Scope, value_error
from workflows.engine.macros import MacroError
from workflows.engine.nodes.base import NodeContext, NodeError, Park, RunDeadlineExceeded, RunStopped
from workflows.engine.params import ParamError
from workflows.engine.ports import OutcomeStatus, RunContext
from workflows.engine.templates import CelError, compile_expr, evaluate
from workflows.engine.values import RunValues, ValueError_, resolve_value


def node_context(ex: Exec, run: RunContext, values: RunValues, run_scope: Mapping[str, Any],
                 halted: Callable[[], OutcomeStatus | None], config: Any = None) -> NodeContext:
    """What the node of ``ex`` is handed when it runs (or, with ``config``, compensates): its
    resolved config, resolve/evaluate in its scope, the run's interruptible wait, its services."""
    node, scope = ex.node, ex.scope
    limits, clock = run.limits, run.clock
    resolved = ex.inputs
    raw = node.config if config is None else config

    def resolve(value: Any, path: list[Any] | None = None) -> Any:
        if config is None:
            if value is raw:
                return resolved
            if path:
                # A part of the config at ``path`` was already resolved before the node ran.
                found_raw, found = raw, resolved
                try:
                    for part in path:
                        found_raw, found = found_raw[part], found[part]
                except (KeyError, IndexError, TypeError):
                    found_raw = None
                if found_raw is value:
                    return found
        try:
            return resolve_value(value, scope, values, node.static_ids, list(path or []))
        except ValueError_ as exc:
            raise value_error(node, exc) from None

    def evaluate_expr(expr: str, names: Mapping[str, Any]) -> Any:
        try:
            source = values.expand(expr)
            value_scope = Scope(run_scope, ex.frame, node.id, scope.error, names) if names else scope
            return evaluate(compile_expr(source, limits), value_scope, clock, limits)
        except CelError as exc:
            raise NodeError(str(exc), code=exc.code) from None
        except (MacroError, ParamError) as exc:
            raise NodeError(str(exc), code="expression_error") from None

    return NodeContext(
        run_id=run.run_id, node_id=node.id, node_type=node.type, config=raw, scope=scope,
        receipt_token=ex.token, attempt=ex.attempt, resolve=resolve, evaluate=evaluate_expr,
        wait=make_wait(run, halted), emit=ex.events.append,
        services=run.services, state=ex.state, timeout=node.timeout, secrets=ex.secrets,
        upstream=ex.upstream, key=ex.key, title=node.title, clock=clock,
        can_park=run.can_park, limits=limits)

def make_wait(run: RunContext, halted: Callable[[], OutcomeStatus | None]) -> Callable[[float, dict[str, Any] | None], None]:
    """The interruptible wait of a node (``NodeContext.wait``): parks a run that may park when the
    wait is long; otherwise sleeps in ticks, ended by a stop or the run's deadline."""
    ctx, clock = run, run.clock

    def wait(seconds: float, state: dict[str, Any] | None = None) -> None:
        if ctx.can_park and seconds > ctx.park_threshold:
            raise Park(wake_at=clock.now() + seconds, state=state or {})
        end = clock.monotonic() + seconds
        while True:
            if ctx.stop.is_set() or halted() == OutcomeStatus.STOPPED:
                raise RunStopped()
            if halted() == OutcomeStatus.TIMEOUT or (ctx.deadline is not None and clock.now() >= ctx.deadline):
                raise RunDeadlineExceeded()
            remaining = end - clock.monotonic()
            if remaining <= 0:
                return
            tick = min(remaining, 0.2)
            if ctx.deadline is not None:
                tick = max(0.0, min(tick, ctx.deadline - clock.now()))
            ctx.stop.wait(tick)

    return wait
