"""The contract every node type implements, and what the engine hands a node when it runs it.

A node type is a small module in ``workflows.engine.nodes`` holding one ``NodeType`` subclass:
its config JSON Schema, its outcome ports, its runtime defaults and its ``run`` method. The
registry (``workflows.engine.nodes.registry``) lists the types explicitly; adding a type never
changes the scheduler.

Failures are raised as ``NodeError``; ``retryable`` says whether the node's ``retry`` policy may
try again (transport errors, timeouts, HTTP 5xx and 429 are retryable; 4xx and bad config are not).

Long waits go through ``NodeContext.wait``: it sleeps interruptibly (stop and deadline end it
within a second) or, in a run that may park (async runs), raises ``Park`` so that the executor
frees the worker and resumes the node later with the ``state`` it saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from workflows.engine.errors import (
    LimitExceeded,
    NodeError,
    NodeTimeout,
    Park,
    RunDeadlineExceeded,
    RunStopped,
)
from workflows.engine.events import EngineEvent
from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.ports import Clock, NullServices, Services

if TYPE_CHECKING:
    from workflows.engine.graph import Topology

__all__ = ["NodeError", "NodeTimeout", "LimitExceeded", "RunStopped", "RunDeadlineExceeded", "Park", "NodeResult",
           "NodeContext", "NodeType", "ConfigChecker", "Reference", "TEMPLATE_MARKERS", "BodyHost", "BodyResult", "Services", "NullServices",
           "Clock", "pointer_part"]


# Anything the value resolver expands inside a string: templates, parameters, time macros. A config
# string holding none of these is a literal, which publish can check as it is.
TEMPLATE_MARKERS = re.compile(r"\{\{|\$\{|\$\[")


@dataclass
class NodeResult:
    """What a successful node returns: its output, and which outcome port it took (None: normal)."""

    output: Any = None
    port: str | None = None
    process_data: dict[str, Any] | None = None


@dataclass
class NodeContext:
    """Everything one node execution may use. Built by the scheduler; node code never builds it.

    - ``config``: the node's raw config; ``resolve(value)`` resolves parameters, time macros and
      ``{{ }}`` templates in any value (nested dicts/lists too) against ``scope``.
    - ``evaluate(expr, names)``: evaluates one CEL expression (compiled once, cached) with the
      given names in scope (e.g. ``{"response": ...}`` for an HTTP ``success.when`` rule).
    - ``wait(seconds, state)``: interruptible wait; raises ``RunStopped`` / ``RunDeadlineExceeded``,
      or ``Park`` in a run that may park when ``seconds`` is long.
    - ``emit(event)``: an extra engine event (an ``EngineEvent`` subclass).
    - ``services``: what the platform provides (``ports.Services``); ``clock``: the run's clock
      (``now()`` is ``clock.now()``); ``can_park``: long waits may park the run (async runs).
    - ``secrets``: secret values the node used; the engine redacts them from everything it records.
    """

    run_id: str
    node_id: str
    node_type: str
    config: Mapping[str, Any]
    scope: Mapping[str, Any]
    receipt_token: str
    attempt: int
    resolve: Callable[[Any], Any]
    evaluate: Callable[[str, Mapping[str, Any]], Any]
    wait: Callable[[float, dict[str, Any] | None], None]
    emit: Callable[[EngineEvent], None]
    services: Services = field(default_factory=NullServices)
    state: dict[str, Any] | None = None
    timeout: float | None = None
    secrets: list[str] = field(default_factory=list)
    # Added by the engine (issue 3): the upstream output (a join gets ``{pred_id: output}``),
    # the node execution key (``loop[3].body_node`` inside loops) and the run's business time.
    upstream: Any = None
    key: str = ""
    title: str = ""
    clock: Clock = field(default_factory=Clock)
    can_park: bool = False
    limits: Limits = DEFAULT_LIMITS  # the run's budgets (regexes, JSONPath filters, ...)

    def now(self) -> float:
        """Epoch seconds on the run's clock."""
        return self.clock.now()


@dataclass(frozen=True, slots=True)
class Reference:
    """A platform resource that a node's config names (``NodeType.references``), checked at publish
    by whoever knows the team's resources: ``kind`` ``"workflow"`` (a sub-workflow's id, checked by
    the host against the team's workflows and their call graph) or ``"credential"`` (a credential
    name; ``accepts``: the credential kinds the node can use, empty for any). ``field`` is the JSON
    pointer of the value inside the config (``"/workflow"``)."""

    field: str
    kind: str
    value: Any
    accepts: tuple[str, ...] = ()


class ConfigChecker(Protocol):
    """What the graph checker offers node types (``NodeType.check_config``); problems are collected
    by the checker with the JSON pointer given."""

    def check_value(self, value: Any, pointer: str, scope: Container[str]) -> None: ...

    def check_expression(self, source: str, pointer: str, scope: Container[str]) -> None: ...

    def check_body(self, nodes: list[Any], edges: list[Any], pointer: str, scope: Container[str],
                   names: Iterable[str]) -> tuple[Topology | None, Container[str]]: ...

    def with_names(self, scope: Container[str], names: Iterable[str]) -> Container[str]: ...


@dataclass
class BodyResult:
    """How one run of a container's body ended (``NodeType.body_done``): its index, the error of
    the body node that failed it (None: every body node finished), and the body's sink outputs."""

    index: int
    failed: dict[str, Any] | None
    sinks: dict[str, Any]


class BodyHost(Protocol):
    """What the scheduler offers a container node type (one that runs a body sub-graph, such as
    ``loop``) for one execution of the container node. The type keeps its own ``state`` here; the
    scheduler runs each body as a frame of its own (node keys ``<container key>[i].<node>``), so a
    resumed run replays finished body nodes from the journal like any other node."""

    node_id: str
    config: Mapping[str, Any]
    limits: Limits
    state: Any

    def resolve(self, value: Any, path: list[Any]) -> Any:
        """``value`` resolved in the container's scope (raises the engine's value error)."""
        ...

    def resolve_in_body(self, result: BodyResult, value: Any, path: list[Any]) -> Any:
        """``value`` resolved in the scope of a finished body (its nodes and names in scope)."""
        ...

    def started(self, inputs: Any) -> None:
        """Record the container running with ``inputs``."""
        ...

    def node_event(self, cls: type[Any], *, status: str, outputs: Any = None, error: Any = None) -> None:
        """A node event (``events.NodeEvent`` subclass) of the container, as the scheduler builds them."""
        ...

    def emit(self, event: EngineEvent) -> None: ...

    def info(self) -> Any:
        """The container's ``events.NodeInfo``."""
        ...

    def launch(self, index: int, names: Mapping[str, Any]) -> None:
        """Start body run ``index`` with ``names`` (e.g. ``item``, ``index``) in its scope; its end
        comes back through ``NodeType.body_done``."""
        ...

    def succeed(self, output: Any) -> None: ...

    def fail(self, error: NodeError) -> None: ...


def pointer_part(part: Any) -> str:
    """One reference token of a JSON pointer (RFC 6901: ``~`` as ``~0``, ``/`` as ``~1``)."""
    return str(part).replace("~", "~0").replace("/", "~1")


class NodeType:
    """Base class of node types. Subclasses set the class attributes and implement ``run``."""

    type: ClassVar[str]
    title: ClassVar[str] = ""
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    default_retry: ClassVar[dict[str, Any] | None] = None
    default_timeout: ClassVar[float | None] = None
    # Added by the engine (issue 3): ``inline`` types are fast, pure and never wait; the scheduler
    # runs them on its own thread (no pool hop) unless the node has a ``timeout``.
    inline: ClassVar[bool] = False
    # ``self_timed`` types apply ``ctx.timeout`` to each request they send themselves (an HTTP node
    # polling or awaiting a webhook may wait far longer than one attempt's timeout; ``max_wait``
    # bounds that wait), so the scheduler sets no attempt deadline around their ``run``.
    self_timed: ClassVar[bool] = False
    # ``retries``: the node's ``retry`` policy applies to the type (a container such as ``loop``
    # retries nothing itself: its body nodes have their own policies).
    retries: ClassVar[bool] = True
    # ``output_budget``: the stored-output budget (``Limits.output_bytes``) applies to the output.
    output_budget: ClassVar[bool] = True

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[list[Any], str]]:
        """Bare CEL fields of ``config`` (not ``{{ }}``) as ``[(path inside config, source)]``, so
        that publishing checks they compile and name only what is in scope."""
        return []

    def ports(self, config: Mapping[str, Any]) -> list[str]:
        """Outcome ports an edge may name besides the normal outcome (None) and ``error``."""
        return []

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        """Checks beyond the JSON Schema, as ``[{"path", "message"}]``."""
        return []

    def references(self, config: Mapping[str, Any]) -> list[Reference]:
        """The platform resources (workflows, credentials) the config names. Default: none."""
        return []

    # -- containers (a node holding a sub-graph, such as ``loop``) --------------------------------
    # ``container`` types are run through ``body_start`` / ``body_done`` instead of ``run``.
    container: ClassVar[bool] = False

    def body_start(self, host: BodyHost) -> None:
        """Begin the container: resolve what it needs, then ``host.launch`` bodies, or end it with
        ``host.succeed`` / ``host.fail``."""
        raise NotImplementedError

    def body_done(self, host: BodyHost, result: BodyResult) -> None:
        """One body run ended: launch more, or end the container."""
        raise NotImplementedError

    def bodies(self, config: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The sub-graphs ``config`` holds, as ``[(config key, {"nodes", "edges"})]`` (counted
        against the graph-size budget). Default: none."""
        return []

    def check_config(self, checker: ConfigChecker, config: Mapping[str, Any], pointer: str,
                     scope: Container[str]) -> Topology | None:
        """Publish-time check of the config's values against the names in ``scope``; a container
        checks and returns its body. Default: every string of the config, then the bare CEL
        fields of ``expressions``."""
        checker.check_value(config, pointer, scope)
        for path, source in self.expressions(config):
            checker.check_expression(source, pointer + "".join("/" + pointer_part(p) for p in path), scope)
        return None

    def run(self, ctx: NodeContext) -> NodeResult:
        raise NotImplementedError

    def compensate(self, ctx: NodeContext, output: Any) -> None:
        """Undo the node's effect (``on_error: rollback``). Default: nothing to undo."""
        return None
