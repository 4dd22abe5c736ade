"""The cost of the execution tier on the blocking path (issue 13).

The same Dify-style blocking run (start -> transform -> end) through a real Daphne on the embedded
default, executed two ways side by side in one benchmark run, in alternating rounds:

- ``in-process``: ``WEFT_EXECUTORS=0``, the run executes on the request's thread inside the web
  process (what every blocking run did before the tier; unsafe, kept for tests and this comparison);
- ``tier``: the shipped default, the run handed to a warm executor process of the web process's
  pool over its pipe, its events and end coming back over the same pipe.

p50 and requests/s at c=1 and c=10 (medians over rounds), the ratio tier / in-process, and the
streaming first event's p99 at 8 concurrent Dify streams (the goal: under 50 ms).
"""

from __future__ import annotations

from typing import Any

from bench.common import Config, Report, django_json, fmt, median, percentile, site
from bench.server import INPUTS, Server, load, post

STREAMS = 8
STREAMS_KEY = -STREAMS
FIRST_EVENT_P99_GOAL_MS = 50.0


def _measure(env: dict[str, str], rounds: int, per_round: dict[int, int]) -> dict[int, dict[str, float]]:
    with Server(env) as server:
        fx = django_json("bench.djside", ["server.setup_worker"], server.env)
        url = f"{server.base}/v1/workflows/run"
        body = {"inputs": INPUTS, "response_mode": "blocking", "user": "bench"}
        status, data = post(url, fx["app_token"], body)
        if status != 200:
            raise RuntimeError(f"run endpoint answered {status}: {data[:300]!r}")
        # Warm at the highest concurrency measured: a long-running server's pool has grown already.
        load(url, fx["app_token"], body, 10, 60)
        out: dict[int, dict[str, float]] = {}
        for conc in (1, 10):
            p50, rps, errors = [], [], 0
            for _ in range(rounds):
                r = load(url, fx["app_token"], body, conc, per_round[conc])
                p50.append(percentile(r["latencies_ms"], 50))
                rps.append(r["rps"])
                errors += r["errors"]
            out[conc] = {"p50": median(p50), "rps": median(rps), "errors": errors}
        # Streaming: time to the first event at STREAMS concurrent streams (p99).
        sbody = {**body, "response_mode": "streaming"}
        r = load(url, fx["app_token"], sbody, STREAMS, per_round[10], mode="stream")
        out[STREAMS_KEY] = {"p50": percentile(r["first_ms"], 50), "p99": percentile(r["first_ms"], 99),
                            "rps": r["rps"], "errors": r["errors"]}
        return out


def run(cfg: Config, report: Report) -> None:
    section = "Execution tier (Dify blocking run, Daphne, SQLite)"
    rounds = cfg.pick(3, 1)
    per_round = {1: cfg.pick(200, 10), 10: cfg.pick(400, 20)}
    results: dict[str, dict[int, list[dict[str, float]]]] = {
        label: {1: [], 10: [], STREAMS_KEY: []} for label in ("in-process", "tier")}
    for _ in range(rounds):
        for label, executors in (("in-process", "0"), ("tier", "")):
            with site("sqlite") as s:
                env = {**s.env}
                if executors:
                    env["WEFT_EXECUTORS"] = executors
                else:
                    env.pop("WEFT_EXECUTORS", None)
                for conc, stats in _measure(env, 1, per_round).items():
                    results[label][conc].append(stats)
    for conc in (1, 10):
        summary: dict[str, dict[str, Any]] = {}
        for label in ("in-process", "tier"):
            rows = results[label][conc]
            summary[label] = {"p50": median([r["p50"] for r in rows]), "rps": median([r["rps"] for r in rows]),
                              "errors": sum(r["errors"] for r in rows)}
        before, after = summary["in-process"], summary["tier"]
        report.add(section, f"c={conc}: p50 in-process -> tier",
                   f"{fmt(before['p50'], 'ms', 2)} -> {fmt(after['p50'], 'ms', 2)} "
                   f"({after['p50'] - before['p50']:+.2f} ms)")
        report.add(section, f"c={conc}: requests/s in-process -> tier",
                   f"{fmt(before['rps'], '')} -> {fmt(after['rps'], '')} (x{after['rps'] / before['rps']:.2f})")
        errors = before["errors"] + after["errors"]
        if errors:
            report.add(section, f"c={conc}: errors", str(errors), "0", False)
    firsts = {label: results[label][STREAMS_KEY] for label in results}
    before = median([r["p99"] for r in firsts["in-process"]])
    after = median([r["p99"] for r in firsts["tier"]])
    report.add(section, f"streaming, {STREAMS} concurrent streams: first event p99 in-process -> tier",
               f"{fmt(before, 'ms', 1)} -> {fmt(after, 'ms', 1)}", f"< {FIRST_EVENT_P99_GOAL_MS:g} ms",
               after < FIRST_EVENT_P99_GOAL_MS)
    errors = sum(r["errors"] for label in firsts for r in firsts[label])
    if errors:
        report.add(section, "streaming: errors", str(errors), "0", False)
    report.note(f"Execution tier: {rounds} alternating rounds of in-process / tier, each on a fresh site and server "
                f"({per_round[1]} requests at c=1, {per_round[10]} at c=10 per round); the load generator is a "
                "separate process on the same cores.")
