"""Starting a stream (``runs.dialects.common.stream_start``, the Dify and Coze streaming runs): its
slot is taken before its run starts, and its follower subscribes as soon as the run is recorded, so
a new stream reads no log."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Any

import pytest

from runs.cursor import EventCursor, stream_slot, stream_slots
from runs.models import Run
from tests.runs.conftest import RunEnv


def events_of(response: Any) -> list[str]:
    """The Dify event names of a streamed response, read to its end (on a loop of its own thread)."""
    assert response.status_code == 200, response.content

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        raw = pool.submit(asyncio.run, read()).result(timeout=60)
    response.close()
    return [json.loads(line[6:])["event"] for line in raw.split(b"\n") if line.startswith(b"data: ")]

@pytest.mark.parametrize(("path", "body"), [
    ("/v1/workflows/run", {"inputs": {"name": "x"}, "response_mode": "streaming", "user": "u"}),
    ("/stream_run", {"name": "x"}),
])
def test_a_stream_past_the_stream_limits_is_429_and_starts_no_run(run_env: RunEnv, settings: Any, path: str,
                                                                  body: dict[str, Any]) -> None:
    """The stream's slot is taken before its run starts: a refused stream leaves no run behind."""
    settings.WEFT_MAX_STREAMS_PER_TOKEN = 1
    token = run_env.app_token_row()
    held = stream_slot(team_id=run_env.team.pk, token_id=token.pk)  # the token's one stream, open
    try:
        refused = run_env.client().post(path, body, format="json")
        assert refused.status_code == 429 and refused["Retry-After"] == "1", refused.content
        assert Run.objects.count() == 0
    finally:
        held.release()
    assert stream_slots.counts == {}  # the refused request kept no slot


def test_a_stream_subscribes_when_its_run_is_recorded_and_reads_no_log(run_env: RunEnv,
                                                                       monkeypatch: Any) -> None:
    """A new streaming run's follower subscribes before the run is handed to its executor, so it
    opens without reading the log (``fresh``) and still gets every event; a repeated idempotency key
    answers its first run, whose log is then replayed from the start."""
    reads: list[str] = []
    real_read = EventCursor.read_log

    def counted(self: EventCursor) -> list[dict[str, Any]]:
        reads.append(self.run_id)
        return real_read(self)

    monkeypatch.setattr(EventCursor, "read_log", counted)
    client = run_env.client()
    body = {"inputs": {"name": "Ann", "amount": 1, "seconds": 0}, "response_mode": "streaming", "user": "u"}
    response = client.post("/v1/workflows/run", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    kinds = events_of(response)
    assert kinds[0] == "workflow_started" and kinds[-1] == "workflow_finished" and "node_finished" in kinds
    run = Run.objects.get()
    assert run.status == "succeeded" and reads == []  # every event came live

    again = client.post("/v1/workflows/run", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replayed = events_of(again)
    assert Run.objects.count() == 1 and reads and set(reads) == {str(run.pk)}
    assert replayed == kinds  # the first run's whole stream, from its log
    assert stream_slots.counts == {}


def test_a_stream_refused_for_its_input_gives_its_slot_back(run_env: RunEnv, settings: Any) -> None:
    """A streaming run refused before it starts (bad inputs: 400) holds no stream slot afterwards,
    so a token at its stream limit is not locked out by its own mistakes."""
    settings.WEFT_MAX_STREAMS_PER_TOKEN = 1
    client = run_env.client()
    for _ in range(3):
        bad = client.post("/v1/workflows/run", {"inputs": {"amount": 1}, "response_mode": "streaming", "user": "u"},
                          format="json")
        assert bad.status_code == 400 and bad.json()["params"] == "inputs.name", bad.content
    assert stream_slots.counts == {} and Run.objects.count() == 0
    good = client.post("/v1/workflows/run", {"inputs": {"name": "Ann", "amount": 1, "seconds": 0},
                                             "response_mode": "streaming", "user": "u"}, format="json")
    assert events_of(good)[-1] == "workflow_finished"
    assert stream_slots.counts == {}
