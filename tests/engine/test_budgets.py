"""Budgets the engine enforces (WORKFLOW_FORMAT.md "Limits"): expressions scanned before CEL,
Rust panics contained, regexes on RE2, stored output size, run CPU time, timeouts (loop items: in
``tests/engine/nodes/test_loop.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from tests.engine.helpers import chain, compile_test, run
from workflows.engine import templates
from workflows.engine.events import NodeFinished
from workflows.engine.graph import validate_graph
from workflows.engine.jsonpaths import JsonPathError, evaluate_path
from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.templates import CelError, CelLimit, compile_expr, scan_expression

MEMBER_CHAIN = "inputs" + ".a" * 14_000  # 28 KB: segfaults the CEL extension when evaluated
TERMS = "+".join(["1"] * 20_000)  # segfaults the CEL extension when evaluated
SIX_MAPS = ("[0,1,2,3,4,5,6,7,8,9].map(a, [0,1,2,3,4,5,6,7,8,9].map(b, [0,1,2,3,4,5,6,7,8,9].map(c, "
            "[0,1,2,3,4,5,6,7,8,9].map(d, [0,1,2,3,4,5,6,7,8,9].map(e, [0,1,2,3,4,5,6,7,8,9].map(f, a)))))))")


def test_the_raw_extension_crashes_on_these_expressions_in_a_subprocess() -> None:
    """The hazard the scan exists for: evaluated by CEL directly, both kill the process."""
    for source in (MEMBER_CHAIN, TERMS):
        code = textwrap.dedent(f"""
            import cel
            cel.compile({source!r}).execute({{"inputs": {{}}}})
        """)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
        assert result.returncode < 0, (source[:20], result.returncode)  # killed by a signal (SIGSEGV)


@pytest.mark.parametrize(("source", "message"), [
    (MEMBER_CHAIN, "the expression is 28006 bytes; the limit is 4096 (WEFT_MAX_EXPRESSION_BYTES)"),
    (TERMS, "the expression is 39999 bytes; the limit is 4096 (WEFT_MAX_EXPRESSION_BYTES)"),
    ("inputs" + ".a" * 40, "the expression nests 40 deep; the limit is 32 (WEFT_MAX_EXPRESSION_DEPTH)"),
    ("+".join(["1"] * 40), "the expression nests 39 deep; the limit is 32 (WEFT_MAX_EXPRESSION_DEPTH)"),
    ("size(" * 40 + "x" + ")" * 40, "the expression nests 40 deep; the limit is 32 (WEFT_MAX_EXPRESSION_DEPTH)"),
    (SIX_MAPS, "the expression nests 6 comprehensions (map, filter, all, exists); the limit is 2 "
               "(WEFT_MAX_COMPREHENSION_DEPTH)"),
])
def test_the_scan_refuses_before_cel(source: str, message: str) -> None:
    with pytest.raises(CelLimit) as caught:
        compile_expr(source)
    assert str(caught.value) == message


def test_ordinary_expressions_pass_the_scan() -> None:
    for source in ("inputs.order.items.map(i, i.price * i.qty).filter(p, p > 10)", "a.b.c[0] + 'x.y(z' + b",
                   "1.5 + 2.25 * (3.0 - x)", "has(inputs.a) ? inputs.a : {'k': [1, 2, 3]}",
                   "xs.all(x, ys.exists(y, y == x))"):
        scan_expression(source, DEFAULT_LIMITS)


def test_publish_time_check_names_the_place() -> None:
    graph = chain({"id": "t", "type": "transform", "config": {"mapping": {"deep": "{{ " + MEMBER_CHAIN + " }}",
                                                                         "sum": "{{ " + TERMS + " }}"}}},
                  {"id": "c", "type": "condition", "config": {"cases": [{"id": "x", "when": SIX_MAPS}]}})
    errors = {e["path"]: e["message"] for e in validate_graph(graph)}
    assert errors["/nodes/1/config/mapping/deep"].startswith("the expression is 28006 bytes")
    assert errors["/nodes/1/config/mapping/sum"].startswith("the expression is 39999 bytes")
    assert errors["/nodes/2/config/cases/0/when"].startswith("the expression nests 6 comprehensions")


def test_an_expression_injected_at_run_time_fails_the_node_with_limit_exceeded() -> None:
    # a team parameter changed after publish: substituted before CEL, scanned again at run time
    graph = chain({"id": "t", "type": "transform", "config": {"mapping": {"v": "{{ ${expr} }}"}}},
                  end_config={"outputs": {"v": "{{ t.v }}"}})
    compiled = compile_test(graph, global_params={"expr": "1 + 1"})
    outcome, _ = run(compiled, params={"expr": TERMS})
    assert outcome.status == "failed"
    assert outcome.error["code"] == "limit_exceeded" and outcome.error["node_id"] == "t"
    assert outcome.error["message"].startswith("nodes.t.config.mapping.v: the expression is 39999 bytes")


def test_a_rust_panic_is_an_expression_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pyo3_runtime.PanicException`` derives from BaseException; no real input is known to raise
    it in this build, so the binding is made to raise one."""
    panic = type("PanicException", (BaseException,), {})

    class Program:
        def references(self) -> dict[str, list[str]]:
            return {"variables": [], "functions": []}

        def execute(self, context: dict) -> None:
            raise panic("index out of bounds")

    monkeypatch.setattr(templates.cel, "compile", lambda source: Program())
    expr = compile_expr("7 * 6 - 0")  # a source no other test compiles (the cache is per source)
    with pytest.raises(CelError, match="the CEL interpreter failed"):
        templates.evaluate(expr, {})
    monkeypatch.setattr(templates.cel, "compile", lambda source: (_ for _ in ()).throw(panic("boom")))
    with pytest.raises(CelError, match="the CEL compiler failed"):
        compile_expr("7 * 6 - 1")
    with pytest.raises(KeyboardInterrupt):  # other BaseExceptions are not swallowed
        monkeypatch.setattr(templates.cel, "compile", lambda source: (_ for _ in ()).throw(KeyboardInterrupt()))
        compile_expr("7 * 6 - 2")


def test_regexes_run_on_re2_with_size_caps() -> None:
    graph = chain({"id": "t", "type": "transform", "config": {"mapping": {
        "evil": '{{ regex_extract(inputs.s, "(a+)+$") }}', "id": '{{ regex_extract("order-42", "order-(\\\\d+)") }}',
        "swapped": '{{ regex_replace("ab", "(a)(b)", "\\\\2\\\\1") }}'}}},
        end_config={"outputs": {"t": "{{ t }}"}}, inputs={"s": {"type": "string"}})
    started = time.monotonic()
    outcome, _ = run(graph, {"s": "a" * 27 + "!"})
    assert time.monotonic() - started < 1.0  # 14.6 s with backtracking
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs["t"] == {"evil": None, "id": "42", "swapped": "ba"}

    outcome, _ = run(graph, {"s": "a" * 2000}, limits=Limits(regex_subject_bytes=1000))
    assert outcome.status == "failed" and outcome.error["code"] == "limit_exceeded"
    assert "WEFT_MAX_REGEX_SUBJECT_BYTES" in outcome.error["message"]

    bad = chain({"id": "t", "type": "transform", "config": {"mapping": {"v": '{{ regex_extract("x", "(?<=a)b") }}'}}})
    outcome, _ = run(bad)
    assert outcome.status == "failed" and outcome.error["code"] == "expression_error"
    assert "invalid regular expression" in outcome.error["message"]


def test_jsonpath_filters_run_on_re2() -> None:
    data = {"users": [{"name": "ann"}, {"name": "bob"}], "s": ["a" * 27 + "!"]}
    assert evaluate_path("$.users[?@.name =~ /A.*/i].name", data) == "ann"
    assert evaluate_path('$.users[?match(@.name, "b.b")].name', data) == "bob"
    started = time.monotonic()
    assert evaluate_path('$.s[?match(@, "(a+)+$")]', data) is None
    assert time.monotonic() - started < 0.5
    with pytest.raises(JsonPathError, match="invalid regular expression"):
        evaluate_path("$.users[?@.name =~ /(?<=a)b/].name", data)
    with pytest.raises(JsonPathError) as caught:
        evaluate_path("$.users[?@.name =~ /a/].name", data, Limits(regex_subject_bytes=2))
    assert caught.value.code == "limit_exceeded"


def test_stored_output_budget_fails_the_node_and_stores_nothing_of_it() -> None:
    graph = chain({"id": "t", "type": "transform", "config": {"mapping": {"blob": "{{ inputs.s }}"}}},
                  inputs={"s": {"type": "string"}})
    big = "x" * 5000
    outcome, host = run(graph, {"s": big}, limits=Limits(output_bytes=4096))
    assert outcome.status == "failed"
    assert outcome.error["code"] == "limit_exceeded"
    assert outcome.error["message"] == "nodes.t: the output is 5011 bytes; the limit is 4096 (WEFT_NODE_MAX_OUTPUT_BYTES)"
    assert host.records["t"].status == "failed" and host.records["t"].output is None
    assert host.records["t"].inputs == {"omitted": "larger than WEFT_NODE_MAX_OUTPUT_BYTES"}
    # (the start node holds the run's inputs, bounded by the request body limit)
    t_events = [e for e in host.events if getattr(e, "node", None) is not None and e.node.node_id != "start"]
    assert big not in repr(t_events) and big not in repr(host.records["t"])
    finished = [e for e in host.events if isinstance(e, NodeFinished) and e.node.node_id == "t"]
    assert finished[0].data["error"]["detail"] == {"bytes": 5011, "limit": 4096}
    outcome, _ = run(graph, {"s": "x" * 100}, limits=Limits(output_bytes=4096))
    assert outcome.status == "succeeded"


def test_run_cpu_budget() -> None:
    heavy = "[" + ",".join(str(i) for i in range(60)) + "]"
    graph = chain(*[{"id": f"t{i}", "type": "transform", "config": {"mapping": {
        "v": "{{ " + f"{heavy}.map(a, {heavy}.map(b, a * b)).size()" + " }}"}}} for i in range(40)])
    outcome, host = run(graph, limits=Limits(run_cpu_seconds=0.05))
    assert outcome.status == "failed"
    assert outcome.error["code"] == "limit_exceeded"
    assert "WEFT_MAX_RUN_CPU_SECONDS" in outcome.error["message"]
    assert sum(1 for k in host.records if k.startswith("t") and host.records[k].status == "succeeded") < 40


def test_a_pure_node_finishing_past_its_timeout_fails_with_timeout() -> None:
    """Native work holding the GIL keeps the scheduler from seeing the deadline; the late result is
    still refused (what cannot be interrupted in a thread is the execution tier's CPU limit's)."""
    graph = chain({"id": "t", "type": "transform", "timeout": 0.05, "config": {"mapping": {
        "v": "{{ inputs.xs.map(a, a * 2).size() }}"}}}, inputs={"xs": {"type": "array"}})
    outcome, host = run(graph, {"xs": list(range(1500))})
    assert outcome.status == "failed"
    assert outcome.error["code"] == "timeout", outcome.error
    assert host.records["t"].output is None


def test_comprehension_cost_budget() -> None:
    graph = chain({"id": "t", "type": "transform", "config": {"mapping": {
        "v": "{{ inputs.xs.map(a, inputs.xs.map(b, a * b)).size() }}"}}}, inputs={"xs": {"type": "array"}})
    started = time.monotonic()
    outcome, _ = run(graph, {"xs": list(range(1000))})
    assert time.monotonic() - started < 1.0
    assert outcome.status == "failed" and outcome.error["code"] == "limit_exceeded"
    assert outcome.error["message"] == ("nodes.t.config.mapping.v: a comprehension over 1000 items nested 2 deep "
                                        "would cost 1000^3; the limit is 4000000 (WEFT_MAX_COMPREHENSION_COST)")
    outcome, _ = run(graph, {"xs": list(range(100))})
    assert outcome.status == "succeeded", outcome.error
