"""Hostile node types for the execution-tier tests, registered only where ``WEFT_EXTRA_NODE_MODULES``
names this module (the servers and workers those tests start) or a test imports it: never in a
product process. Each does what an attacker's expression or a broken native library would do:

- ``test_burn``: catastrophic backtracking in the stdlib ``re`` engine, which holds the GIL in C
  for as long as it runs (what ``regex_extract(s, "(a+)+$")`` did to the web process);
- ``test_segfault``: writes to address 8 through ctypes (what the CEL extension did on a long chain);
- ``test_memory``: allocates and touches memory until something stops it;
- ``test_exit``: the process ends itself abruptly (``os._exit``) without a signal;
- ``test_pid``: harmless, answers the id of the process that executed it.
"""

from __future__ import annotations

import ctypes
import os
import re
import time
from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeResult, NodeType
from workflows.engine.nodes.registry import NODE_TYPES


class BurnNode(NodeType):
    type: ClassVar[str] = "test_burn"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"size": {"type": "integer"}}}

    def run(self, ctx: NodeContext) -> NodeResult:
        size = int(ctx.config.get("size", 40))
        return NodeResult(output={"match": bool(re.match(r"(a+)+$", "a" * size + "!"))})


class SegfaultNode(NodeType):
    type: ClassVar[str] = "test_segfault"

    def run(self, ctx: NodeContext) -> NodeResult:
        ctypes.memset(8, 1, 8)  # a write to the first page of the address space
        return NodeResult(output={})


class MemoryNode(NodeType):
    type: ClassVar[str] = "test_memory"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"mb": {"type": "integer"}}}

    def run(self, ctx: NodeContext) -> NodeResult:
        blocks = []
        for _ in range(int(ctx.config.get("mb", 100_000)) // 8):
            blocks.append(b"x" * (8 * 1024 * 1024))  # written: resident, not just reserved
            time.sleep(0.002)
        return NodeResult(output={"blocks": len(blocks)})


class PidNode(NodeType):
    type: ClassVar[str] = "test_pid"

    def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output={"pid": os.getpid()})


class ExitNode(NodeType):
    type: ClassVar[str] = "test_exit"

    def run(self, ctx: NodeContext) -> NodeResult:
        os._exit(3)


for _cls in (BurnNode, SegfaultNode, MemoryNode, PidNode, ExitNode):
    NODE_TYPES.setdefault(_cls.type, _cls())
