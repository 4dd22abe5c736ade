"""``python -m bench.run [--quick] [--no-write] [--only peer,engine,persist,server,async,growth,scaleout,tier]``.

Runs every benchmark, prints the table (markdown) and writes docs/performance.md with the
machine's description, the notes (skips, load caveat, sizes) and the profiles. ``--quick`` is
the CI smoke: tiny sizes, few repeats; with ``--no-write`` nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from bench import asyncq, engine, growth, peer, persist, queues, scaleout, server, tier
from bench.common import ROOT, Config, Report, machine

BENCHMARKS: dict[str, Callable[[Config, Report], None]] = {
    "peer": peer.run,
    "engine": engine.run,
    "persist": persist.run,
    "growth": growth.run,
    "server": server.run,
    "async": asyncq.run,
    "queues": queues.run,
    "scaleout": scaleout.run,
    "tier": tier.run,
}
DOC = ROOT / "docs" / "performance.md"


def table(report: Report) -> str:
    lines = ["| Section | Benchmark | Result | Goal | |", "|---|---|---|---|---|"]
    for row in report.rows:
        lines.append(f"| {row.section} | {row.name} | {row.value} | {row.goal} | {row.verdict} |")
    return "\n".join(lines)


def document(report: Report, info: dict[str, str], cfg: Config, seconds: float, analysis: str) -> str:
    parts = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand except the analysis section, "
        "which `bench/analysis.md` supplies. Every figure is a median of several runs; every comparison is "
        "measured side by side in the same run and given as a ratio.",
        "",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {'quick' if cfg.quick else 'full'} mode, "
        f"{seconds:.0f} s in all.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
    ]
    if report.side_by_side:
        parts += ["## Side by side with n8n", "", report.side_by_side, "",
                  "The machine's load before and after is in the notes below. Goals are judged on a quiet "
                  "machine: run `make bench` there (one command; it installs n8n when missing).", ""]
    parts += [
        "## Results",
        "",
        table(report),
        "",
    ]
    if report.notes:
        parts += ["## Notes", "", *[f"- {n}" for n in report.notes], ""]
    if analysis:
        parts += [analysis.rstrip(), ""]
    if report.profiles:
        parts += ["## Profiles", ""]
        for title, text in report.profiles.items():
            parts += [f"### {title}", "", "```", text.strip(), "```", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke)")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    parser.add_argument("--only", default="", help="comma-separated: " + ",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick, repeats=3 if args.quick else 5,
                 only={s.strip() for s in args.only.split(",") if s.strip()})
    info = machine()
    report = Report()
    report.note("Load caveat: other processes (test suites of other engineers) may share this machine's cores "
                f"while the benchmark runs; the load average at start was {info['Load average at start']}. "
                "Ratios measured side by side are more trustworthy than absolute figures.")
    if cfg.quick:
        report.note("Quick mode (CI smoke): tiny sizes, one or two repeats, SQLite only; the figures prove the "
                    "harness works and mean little.")
    started = time.perf_counter()
    failed = False
    for name, bench in BENCHMARKS.items():
        if cfg.only and name not in cfg.only:
            continue
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            bench(cfg, report)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            report.add(name, "benchmark failed", f"error: {type(exc).__name__}: " + " ".join(str(exc).split())[:160].replace("|", "/"))
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    if report.side_by_side:
        print("Side by side with n8n:\n" + report.side_by_side + "\n")
    print(table(report))
    for note in report.notes:
        print(f"- {note}")
    if not args.no_write:
        analysis_file = ROOT / "bench" / "analysis.md"
        analysis = analysis_file.read_text() if analysis_file.exists() else ""
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(document(report, info, cfg, seconds, analysis))
        print(f"\nwritten: {os.path.relpath(DOC, ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
