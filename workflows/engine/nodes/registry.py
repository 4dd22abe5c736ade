"""The explicit list of node types the engine knows, by type name."""

from __future__ import annotations

from workflows.engine.nodes.base import NodeType
from workflows.engine.nodes.condition import ConditionNode
from workflows.engine.nodes.db import DbNode
from workflows.engine.nodes.delay import DelayNode
from workflows.engine.nodes.end import EndNode
from workflows.engine.nodes.http import HttpNode
from workflows.engine.nodes.loop import LoopNode
from workflows.engine.nodes.queue import QueueNode
from workflows.engine.nodes.start import StartNode
from workflows.engine.nodes.transform import TransformNode
from workflows.engine.nodes.workflow import WorkflowNode

NODE_TYPE_CLASSES: list[type[NodeType]] = [
    StartNode, EndNode, ConditionNode, TransformNode, HttpNode, DelayNode, LoopNode, WorkflowNode, DbNode, QueueNode,
]

NODE_TYPES: dict[str, NodeType] = {cls.type: cls() for cls in NODE_TYPE_CLASSES}
