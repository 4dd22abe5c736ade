"""Side by side with n8n in one run, on the same machine, with the same load generator.

Weft runs as shipped (``manage.py runweft``: one Daphne per core on one socket, the django-q2
cluster, the shipped rate limits) on a fresh SQLite site; the workflow is start -> transform ->
end computing ``{"total": amount * 2, "orderId"}``, called through the Dify dialect (``POST
/v1/workflows/run``, blocking). n8n 1.123.81 runs the peer's Webhook -> Set workflow doing the
same work (``../shared/bench/n8n/``: ``wf.json``, ``env.sh``, ``post.lua``), on a free port, with
execution data saved (its default). n8n is installed from the npm registry into
``WEFT_BENCH_N8N_DIR`` (default ``/tmp/weft-bench-n8n``) when it is missing; when it cannot be
installed or started the table says so and only Weft is measured.

Load: ``wrk`` (Debian's) when it is on the PATH, else ``bench.load`` (Python threads), the same
for both peers; at each concurrency the peers alternate in rounds and the median round is kept.
Streaming: the first event's p99 with 8 concurrent Dify streams. Quick mode (CI smoke) measures
Weft only, briefly, and never installs n8n.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Report, django_json, fmt, median, percentile, site

N8N_VERSION = "1.123.81"
PEER_DIR = Path(os.environ.get("WEFT_BENCH_N8N_PEER", ROOT.parent / "shared" / "bench" / "n8n"))
N8N_DIR = Path(os.environ.get("WEFT_BENCH_N8N_DIR", Path(tempfile.gettempdir()) / "weft-bench-n8n"))
BODY_N8N = {"orderId": "A1", "amount": 21}
BODY_WEFT = {"inputs": BODY_N8N, "response_mode": "blocking", "user": "bench"}
SECTION = "Side by side with n8n"
WARM_UP_SECONDS = 20.0  # per peer, at c=10, before the measured rounds
RPS_GOAL = 2.0  # c=10: Weft's requests/s >= 2x n8n's
P50_GOAL = 0.75  # c=1: Weft's p50 <= 0.75x n8n's
STREAM_GOAL_MS = 50.0  # first event p99 at 8 concurrent streams

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(auth)s
function done(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50": %%f, "p99": %%f, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def graph() -> dict[str, Any]:
    """The same work as n8n's Webhook -> Set: read orderId and amount, answer total and orderId."""
    return {
        "inputs": {"orderId": {"type": "string", "required": True}, "amount": {"type": "number", "required": True}},
        "outputs": {"total": {"type": "number"}, "orderId": {"type": "string"}},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "set", "type": "transform", "name": "Set",
             "config": {"mapping": {"total": "{{ inputs.amount * 2 }}", "orderId": "{{ inputs.orderId }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"total": "{{ set.total }}", "orderId": "{{ set.orderId }}"}}},
        ],
        "edges": [{"from": "start", "to": "set"}, {"from": "set", "to": "end"}],
    }


def setup_worker() -> dict[str, Any]:
    """Django side: the bench team with the peer-equivalent workflow published."""
    from bench.fixtures import team_with_workflow

    fx = team_with_workflow(graph(), name="Peer")
    return {"app_token": fx["app_token"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited early: {log.read_text(errors='replace')[-1500:] if log.exists() else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"did not answer {url} within {timeout:.0f} s")


def _post(url: str, body: dict[str, Any], token: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- n8n -------------------------------------------------------------------------------------------
def n8n_install() -> str | None:
    """Install n8n into N8N_DIR when missing; None when ready, else why it cannot be."""
    binary = N8N_DIR / "node_modules" / ".bin" / "n8n"
    if binary.exists() and (N8N_DIR / "node_modules" / "sqlite3" / "build").exists():
        return None
    if not (PEER_DIR / "wf.json").exists():
        return f"the peer's files are not at {PEER_DIR} (set WEFT_BENCH_N8N_PEER)"
    if not shutil.which("npm") or not shutil.which("node"):
        return "node/npm are not installed"
    print(f"[bench] n8n {N8N_VERSION} is missing: installing it from the npm registry into {N8N_DIR} "
          "(a few minutes) ...", file=sys.stderr, flush=True)
    N8N_DIR.mkdir(parents=True, exist_ok=True)
    (N8N_DIR / "package.json").write_text(json.dumps({
        "name": "n8nbench", "version": "1.0.0", "private": True, "dependencies": {"n8n": N8N_VERSION},
        "overrides": {"xlsx": "0.18.5"}}))
    with open(N8N_DIR / "install.log", "wb") as log:
        # As the peer's setup.sh: native scripts skipped (isolated-vm does not build on Node 20), sqlite3 rebuilt.
        npm = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=N8N_DIR,
                             stdout=log, stderr=subprocess.STDOUT, timeout=1800)
        if npm.returncode != 0:
            return f"npm install failed (see {N8N_DIR / 'install.log'})"
        gyp = subprocess.run(["npx", "node-gyp", "rebuild", "--release", "-j", "2"], cwd=N8N_DIR / "node_modules" / "sqlite3",
                             stdout=log, stderr=subprocess.STDOUT, timeout=1800)
        if gyp.returncode != 0:
            return f"building n8n's sqlite3 failed (see {N8N_DIR / 'install.log'})"
    return None


def _n8n_env(port: int, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("N8N_")}
    for line in (PEER_DIR / "env.sh").read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            for pair in line[len("export "):].split():
                key, _, value = pair.partition("=")
                env[key] = value
    env.update({"N8N_USER_FOLDER": str(data), "N8N_PORT": str(port), "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1"})
    return env


@contextmanager
def n8n_server() -> Iterator[str]:
    """n8n with the peer's workflow imported and active, on a free port; yields the webhook URL."""
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="weft-bench-n8n-data-"))
    env = _n8n_env(port, data)
    binary = str(N8N_DIR / "node_modules" / ".bin" / "n8n")
    log = data / "n8n.log"
    try:
        for args in (["import:workflow", f"--input={PEER_DIR / 'wf.json'}"],
                     ["update:workflow", "--id=bench0000000001", "--active=true"]):
            subprocess.run([binary, *args], cwd=N8N_DIR, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300, check=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen([binary, "start"], cwd=N8N_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/healthz", proc, 180, log)
            url = f"http://127.0.0.1:{port}/webhook/bench"
            deadline = time.monotonic() + 60
            while True:  # the webhook is registered shortly after /healthz answers
                status, body = _post(url, BODY_N8N)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"n8n webhook answered {status}: {body[:200]!r}")
                time.sleep(0.5)
            if json.loads(body).get("total") != 42:
                raise RuntimeError(f"n8n answered {body[:200]!r}")
            yield url
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(data, ignore_errors=True)


# -- Weft ------------------------------------------------------------------------------------------
@contextmanager
def weft_server(env: dict[str, str], web_processes: int | None = None) -> Iterator[str]:
    """``manage.py runweft`` as shipped (every core, the cluster), on a free port; yields its base URL."""
    port = _free_port()
    extra = [] if web_processes is None else ["--web-processes", str(web_processes)]
    base = f"http://127.0.0.1:{port}"
    log = Path(env["WEFT_DATA_DIR"]) / "runweft.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "runweft", "--no-demo", "--host", "127.0.0.1",
                                 "--port", str(port), *extra], cwd=ROOT, env={**env, "WEFT_PUBLIC_URL": base},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"{base}/api/schema/", proc, 120, log)
        yield base
    finally:
        _stop(proc)


# -- load ------------------------------------------------------------------------------------------
def measure(url: str, body: dict[str, Any], token: str, concurrency: int, seconds: float) -> dict[str, float]:
    """``{"rps", "p50", "p99", "errors"}`` (ms) for ``seconds`` of POSTs at ``concurrency``."""
    if shutil.which("wrk"):
        auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT % {"body": json.dumps(json.dumps(body)), "auth": auth})
        try:
            proc = subprocess.run(["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                                   "--timeout", "10s", "-s", script.name, url], capture_output=True, text=True,
                                  timeout=seconds + 60)
        finally:
            os.unlink(script.name)
        line = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"wrk failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
        r = json.loads(line[-1])
        return {"rps": r["requests"] / r["seconds"], "p50": r["p50"], "p99": r["p99"], "errors": r["errors"]}
    # The same generator for both peers when wrk is missing: bench.load, sized to about ``seconds``.
    from bench.server import load

    probe = load(url, token, body, concurrency, max(concurrency * 5, 10))
    n = max(concurrency * 5, int(probe["rps"] * seconds))
    r = load(url, token, body, concurrency, n)
    return {"rps": r["rps"], "p50": percentile(r["latencies_ms"], 50), "p99": percentile(r["latencies_ms"], 99),
            "errors": r["errors"]}


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "bench.load (Python threads; wrk is not installed)"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the benchmark ---------------------------------------------------------------------------------
def run(cfg: Config, report: Report) -> None:
    rounds = cfg.pick(3, 1)
    seconds = cfg.pick(5.0, 1.0)
    report.note(f"Side by side: load before = `{uptime()}`.")
    why_not = "skipped in quick mode (CI smoke)" if cfg.quick else n8n_install()
    results: dict[str, dict[int, dict[str, float]]] = {"weft": {}, "n8n": {}}
    stream: dict[str, Any] = {}
    samples: dict[str, str] = {}
    with site("sqlite") as s:
        env = {k: v for k, v in s.env.items() if not k.endswith("RATE_LIMIT_PER_MINUTE")}  # the shipped limits
        fx = django_json("bench.djside", ["peer.setup_worker"], env)
        token = fx["app_token"]
        with weft_server(env) as base, (n8n_server() if why_not is None else _nothing()) as n8n_url:
            weft_url = f"{base}/v1/workflows/run"
            status, data = _post(weft_url, BODY_WEFT, token)
            if status != 200 or json.loads(data)["data"]["outputs"] != {"total": 42, "orderId": "A1"}:
                raise RuntimeError(f"Weft answered {status}: {data[:300]!r}")
            targets = [("weft", weft_url, BODY_WEFT, token)]
            if n8n_url:
                targets.append(("n8n", n8n_url, BODY_N8N, ""))
            # Warm-up at the highest concurrency measured, as long for both: Weft's executor pools grow to
            # it (each new executor process costs about a second of CPU while it imports, and at c=10 the
            # pools take 10-15 s to stop growing), n8n's JIT compiles its hot code.
            for _, url, body, tok in targets:
                measure(url, body, tok, 10, cfg.pick(WARM_UP_SECONDS, 1.0))
            for conc in (1, 10):
                per: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in targets}
                for _ in range(rounds):
                    for name, url, body, tok in targets:
                        per[name].append(measure(url, body, tok, conc, seconds))
                        if per[name][-1]["errors"] and name not in samples:
                            status, answer = _post(url, body, tok)
                            samples[name] = f"{status}: {answer[:200].decode(errors='replace')}"
                for name, runs in per.items():
                    results[name][conc] = {k: median([r[k] for r in runs]) for k in ("rps", "p50", "p99")}
                    results[name][conc]["errors"] = sum(r["errors"] for r in runs)
            from bench.server import load

            r = load(weft_url, token, {**BODY_WEFT, "response_mode": "streaming"}, 8, cfg.pick(400, 16), mode="stream")
            stream = {"p50": percentile(r["first_ms"], 50), "p99": percentile(r["first_ms"], 99), "errors": r["errors"],
                      "n": len(r["first_ms"])}
            if r["errors"]:
                samples["weft streaming"] = "; ".join(r["error_sample"])[:300]
    for name, sample in samples.items():
        report.note(f"Side by side: {name} errors; a request made right after answered {sample!r}.".replace("|", "/"))
    after = uptime()
    report.note(f"Side by side: load after = `{after}`. Load generator: {generator()}, on the same cores as both "
                f"servers; {rounds} alternating round(s) of {seconds:g} s per peer and concurrency after a warm-up of "
                f"{cfg.pick(WARM_UP_SECONDS, 1.0):g} s per peer at c=10, "
                "median round shown. Weft as shipped: `manage.py runweft` (one Daphne per core, the cluster, the "
                "default rate limits), SQLite; n8n: " + (f"{N8N_VERSION}, the peer's Webhook -> Set workflow, "
                "execution data saved" if why_not is None else f"not measured ({why_not})") + ".")
    report.side_by_side = side_by_side_table(results, stream, why_not)
    w, n = results["weft"], results["n8n"]
    for conc in (1, 10):
        report.add(SECTION, f"Weft, Dify blocking run, c={conc}: requests/s, p50 / p99",
                   f"{fmt(w[conc]['rps'], '')}, {fmt(w[conc]['p50'], 'ms', 2)} / {fmt(w[conc]['p99'], 'ms', 2)}")
        if n:
            report.add(SECTION, f"n8n webhook, c={conc}: requests/s, p50 / p99",
                       f"{fmt(n[conc]['rps'], '')}, {fmt(n[conc]['p50'], 'ms', 2)} / {fmt(n[conc]['p99'], 'ms', 2)}")
    if n:
        rps_ratio = w[10]["rps"] / n[10]["rps"]
        p50_ratio = w[1]["p50"] / n[1]["p50"]
        report.add(SECTION, "c=10: requests/s Weft / n8n", f"{rps_ratio:.2f}x", f">= {RPS_GOAL:g}x, no errors",
                   rps_ratio >= RPS_GOAL and w[10]["errors"] == 0)
        report.add(SECTION, "c=1: p50 Weft / n8n", f"{p50_ratio:.2f}x", f"<= {P50_GOAL:g}x", p50_ratio <= P50_GOAL)
    else:
        report.add(SECTION, "ratios to n8n", f"not measured: {why_not}")
    errors = sum(w[c]["errors"] for c in w)
    report.add(SECTION, "Weft errors (c=1 and c=10, all rounds)", str(int(errors)), "0", errors == 0)
    report.add(SECTION, "Dify streaming, 8 concurrent streams: first event p50 / p99",
               f"{fmt(stream['p50'], 'ms', 2)} / {fmt(stream['p99'], 'ms', 2)} ({stream['n']} streams, "
               f"{stream['errors']} errors)", f"p99 < {STREAM_GOAL_MS:g} ms",
               stream["p99"] < STREAM_GOAL_MS and stream["errors"] == 0)
    profile(cfg, report)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def side_by_side_table(results: dict[str, dict[int, dict[str, float]]], stream: dict[str, Any],
                       why_not: str | None) -> str:
    """The issue's table: Weft and n8n side by side, the ratios and the goals met or missed."""
    w, n = results["weft"], results["n8n"]

    def cell(r: dict[str, float]) -> str:
        return f"{fmt(r['rps'], '')} req/s, p50 {fmt(r['p50'], 'ms', 2)}, p99 {fmt(r['p99'], 'ms', 2)}" + (
            f", {int(r['errors'])} errors" if r["errors"] else "")

    lines = ["| | Weft, Dify blocking run | n8n webhook | Weft / n8n | goal | |", "|---|---|---|---|---|---|"]
    for conc in (1, 10):
        if n:
            rps, p50 = w[conc]["rps"] / n[conc]["rps"], w[conc]["p50"] / n[conc]["p50"]
            ratio = f"requests/s {rps:.2f}x, p50 {p50:.2f}x"
            if conc == 10:
                goal, met = f"requests/s >= {RPS_GOAL:g}x, no errors", rps >= RPS_GOAL and w[10]["errors"] == 0
            else:
                goal, met = f"p50 <= {P50_GOAL:g}x", p50 <= P50_GOAL
            verdict = "met" if met else "**missed**"
            lines.append(f"| c={conc} | {cell(w[conc])} | {cell(n[conc])} | {ratio} | {goal} | {verdict} |")
        else:
            lines.append(f"| c={conc} | {cell(w[conc])} | not measured: {why_not} | | | |")
    met = stream["p99"] < STREAM_GOAL_MS and stream["errors"] == 0
    lines.append(f"| streaming, 8 concurrent: first event | p50 {fmt(stream['p50'], 'ms', 2)}, p99 "
                 f"{fmt(stream['p99'], 'ms', 2)} | | | p99 < {STREAM_GOAL_MS:g} ms | {'met' if met else '**missed**'} |")
    return "\n".join(lines)


def profile_worker(runs: int) -> dict[str, Any]:
    """Django side: ``runs`` Dify blocking runs of the peer workflow through Django's test client
    (the whole request path in this process: middleware, auth, throttles, the run, the response),
    profiled with pyinstrument; also the SQL statements of one warm run."""
    from django.db import connection
    from django.test import Client
    from pyinstrument import Profiler

    from bench.fixtures import team_with_workflow

    fx = team_with_workflow(graph(), name="Profile")
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {fx['app_token']}"}
    body = json.dumps(BODY_WEFT)

    def one() -> None:
        response = client.post("/v1/workflows/run", body, content_type="application/json", **headers)
        if response.status_code != 200:
            raise RuntimeError(f"run answered {response.status_code}: {response.content[:200]!r}")

    for _ in range(20):
        one()
    # The request thread's statements (the run's own steps are written by its executor process).
    # Logged by hand: CaptureQueriesContext saw none of them here.
    debug = connection.force_debug_cursor
    connection.force_debug_cursor = True
    try:
        connection.queries_log.clear()
        one()
        statements = [q["sql"][:110] for q in connection.queries_log]
    finally:
        connection.force_debug_cursor = debug
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(runs):
        one()
    profiler.stop()
    per_run_ms = (time.perf_counter() - started) / runs * 1e3
    text = profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False, timeline=False)
    lines = [line for line in text.splitlines() if line.strip()]
    return {"per_run_ms": per_run_ms, "statements": statements,
            "profile": "\n".join(lines[:70])}


def profile(cfg: Config, report: Report) -> None:
    runs = cfg.pick(300, 10)
    with site("sqlite") as s:
        env = {k: v for k, v in s.env.items() if not k.endswith("RATE_LIMIT_PER_MINUTE")}
        r = django_json("bench.djside", ["peer.profile_worker", json.dumps({"runs": runs})], env)
    report.add(SECTION, "one Dify blocking run in process (Django test client, profiled): wall time",
               fmt(r["per_run_ms"], "ms", 2))
    report.add(SECTION, "SQL statements of one warm run in the web process (its steps: the executor's)",
               str(len(r["statements"])))
    report.profiles[f"Hot path: {runs} Dify blocking runs in process (pyinstrument, wall time)"] = r["profile"]
    report.profiles["Hot path: the SQL statements of one warm Dify blocking run"] = "\n".join(r["statements"])
