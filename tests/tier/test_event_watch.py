"""An executor sends a run's events to its web process only while someone there reads them
(``runs.pool``, ``runs.executor_process``): a reader that arrives while the run executes gets the
rest pushed at once, not at the next log poll.

The server's log poll is set to 60 s, so whatever a reader gets within the test's few seconds was
pushed by the executor (after the web process asked it to, "watch") or replayed from the log when
the reader subscribed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from accounts.models import ALL_SCOPES
from accounts.services import token_create
from runs.models import Run
from tests.conftest import app_make, published_make, unique
from tests.runs.conftest import sse_read
from tests.support.processes import Process, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DELAY_S = 2.0
SLOW = {
    "inputs": {}, "outputs": {},
    "nodes": [{"id": "start", "type": "start"},
              {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": DELAY_S}},
              {"id": "end", "type": "end", "config": {"outputs": {"ok": True}}}],
    "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
}


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[tuple[Process, str]]:
    with daphne(WEFT_EXECUTORS="1", WEFT_STREAM_POLL_SECONDS="60", WEFT_LOG_LEVEL="ERROR") as (proc, url):
        requests.get(f"{url}/api/v1/apps", timeout=30)
        yield proc, url


def test_a_reader_that_comes_while_the_run_executes_gets_the_rest_pushed(server: tuple[Process, str],
                                                                         team_a: Any) -> None:
    _, url = server
    _, token = token_create(team=team_a, name=unique("watch"), scopes=list(ALL_SCOPES))
    headers = {"Authorization": f"Bearer {token}"}
    workflow = published_make(team_a, SLOW, app=app_make(team_a))
    # A first run, so that the executor is up and the slow run is handed over at once, before
    # anyone reads it (a run that waits for an executor is handed over with its readers known).
    quick = published_make(team_a, app=app_make(team_a))
    warm = requests.post(f"{url}/api/v1/workflows/run", headers=headers, timeout=60,
                         json={"workflowId": str(quick.pk), "params": {"name": "x"}})
    assert warm.status_code == 200 and warm.json()["status"] == "succeeded"
    answers: list[requests.Response] = []
    blocking = threading.Thread(target=lambda: answers.append(requests.post(
        f"{url}/api/v1/workflows/run", headers=headers, json={"workflowId": str(workflow.pk), "params": {}},
        timeout=60)))
    blocking.start()
    deadline = time.monotonic() + 10
    while not (run := Run.objects.filter(workflow=workflow).first()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run is not None, "the run was not recorded"
    started = time.monotonic()
    with requests.get(f"{url}/api/v1/runs/{run.pk}/events", headers=headers, stream=True, timeout=30) as stream:
        assert stream.status_code == 200
        received, _ = sse_read(stream, until=lambda item: item.event == "run_finished")
    blocking.join(30)
    assert answers and answers[0].status_code == 200 and answers[0].json()["status"] == "succeeded"
    types = [item.event for item in received]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert types.count("node_finished") == 3
    # The end came within the delay and a margin, pushed: the next poll was a minute away.
    assert received[-1].at - started < DELAY_S + 5
