"""The embedded default's cache (config/sharedcache): one store for every process of an installation.

Real processes: counters incremented from several processes at once lose nothing, ``add`` lets
exactly one process win, and what one process stores another reads (a websocket ticket issued by
one web process is redeemed by another, once)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache

from accounts.models import Team
from runs.ws_tickets import ws_ticket_issue, ws_ticket_redeem
from tests.support.processes import python_process, stop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def shared_cache_only() -> None:
    if settings.CACHES["default"]["BACKEND"] != "config.sharedcache.SharedFileCache":
        pytest.skip("Redis is configured: the shared file cache is the embedded default's")


def run_all(code: str, n: int) -> list[str]:
    start_at = time.time() + 3.0
    procs = [python_process(f"import time\nwhile time.time() < {start_at}: time.sleep(0.005)\n{code}") for _ in range(n)]
    try:
        for proc in procs:
            assert proc.wait(120) == 0, proc.log_tail()
        return [proc.log_tail() for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc, kill=True)


def test_values_expiry_and_deletion() -> None:
    cache.set("t:obj", {"a": [1, 2]}, 60)
    cache.set("t:n", 5, 60)
    assert cache.get("t:obj") == {"a": [1, 2]}
    assert cache.incr("t:n", 3) == 8
    assert cache.add("t:n", 0, 60) is False
    with pytest.raises(ValueError):
        cache.incr("t:missing")
    with pytest.raises(ValueError):
        cache.incr("t:obj")  # not a number
    cache.set("t:short", "x", 1)
    assert cache.get("t:short") == "x"
    time.sleep(1.2)
    assert cache.get("t:short", "gone") == "gone"
    assert cache.add("t:short", "y", 60) is True  # an expired entry counts as absent
    assert cache.delete("t:obj") is True
    assert cache.get("t:obj") is None
    cache.set("t:forever", 1, None)
    assert cache.touch("t:forever", 60) is True


def test_increments_from_several_processes_all_count() -> None:
    cache.add("t:counter", 0, 600)
    run_all("from django.core.cache import cache\nfor _ in range(150): cache.incr('t:counter')", 3)
    assert cache.get("t:counter") == 450


def test_add_lets_exactly_one_process_win() -> None:
    tails = run_all("from django.core.cache import cache\nprint('won' if cache.add('t:once', 1, 600) else 'lost', flush=True)", 4)
    assert sorted(t.strip().splitlines()[-1] for t in tails) == ["lost", "lost", "lost", "won"]


def test_a_ticket_issued_here_is_redeemed_once_by_another_process(team_a: Team) -> None:
    ticket = ws_ticket_issue(team_id=team_a.pk, token_id=None)
    tails = run_all(f"from runs.ws_tickets import ws_ticket_redeem\nprint(ws_ticket_redeem({ticket!r}), flush=True)", 1)
    assert str(team_a.pk) in tails[0]
    assert ws_ticket_redeem(ticket) is None  # used up by the other process


def test_count_windows_counts_every_key_in_one_statement_and_restarts_expired_ones(tmp_path: Any) -> None:
    from config.sharedcache import SharedFileCache

    cache = SharedFileCache(str(tmp_path / "c.sqlite3"), {})
    assert cache.count_windows(["a", "b"], 60) == [1, 1]
    assert cache.count_windows(["b", "a"], 60) == [2, 2]
    assert cache.count_windows(["a"], 60) == [3]
    assert cache.get("a") == 3 and cache.get("b") == 2
    cache.set("b", 7, timeout=-1)  # expired: counting starts again
    cache.set("c", "text")  # not a counter: counting starts again
    assert cache.count_windows(["a", "b", "c"], 60) == [4, 1, 1]
