"""Versions and their compiled graphs, cached per process.

A version never changes once written, so its row (``version_get``: what an executor process needs
for each run it is handed) and its compiled graph (topology, CEL programs, schemas) are read and
built once per process and reused by every run of that version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from accounts.selectors import credential_names, parameters_get
from config.errors import AppUnavailable
from workflows.budgets import engine_limits
from workflows.engine.graph import CompiledGraph, GraphInvalid, compile_graph
from workflows.models import WorkflowVersion

_CACHE_SIZE = 256
_cache: OrderedDict[str, CompiledGraph] = OrderedDict()
_lock = threading.Lock()
_versions: OrderedDict[str, WorkflowVersion] = OrderedDict()


def version_get(version_id: Any) -> WorkflowVersion:
    """The version row (immutable; cached, the newest ``_CACHE_SIZE`` kept)."""
    key = str(version_id)
    with _lock:
        hit = _versions.get(key)
        if hit is not None:
            _versions.move_to_end(key)
            return hit
    version = WorkflowVersion.objects.get(pk=version_id)
    with _lock:
        _versions[key] = version
        while len(_versions) > _CACHE_SIZE:
            _versions.popitem(last=False)
    return version


def compiled_version(*, version: Any) -> CompiledGraph:
    """The compiled graph of a published version (checked against the team's current parameter and
    credential names on first use in this process; a version they no longer satisfy cannot run)."""
    key = str(version.pk)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        # Versions published before inline secrets were refused keep running until
        # ``manage.py secrets_to_credentials`` moves their secrets into credentials.
        compiled = compile_graph(version.graph, global_params=parameters_get(team=version.team),
                                 credential_names=credential_names(team=version.team), limits=engine_limits(),
                                 inline_secrets=True)
    except GraphInvalid as exc:
        raise AppUnavailable("The published version is no longer valid: "
                             + "; ".join(f"{e['path']}: {e['message']}" for e in exc.errors[:5])) from None
    with _lock:
        _cache[key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled
