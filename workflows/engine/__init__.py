"""Weft's workflow engine: pure Python, imports nothing from Django.

Graph parsing and validation, values (parameters, time macros, CEL templates, JSONPath), the
scheduler and the node types. The Django side plugs in through the interfaces in ``ports.py``
(journal of node results, event sink, stop signal, clock, services such as credentials).
"""
