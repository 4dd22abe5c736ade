"""Weft benchmarks (``make bench``): the engine alone, the engine on a database, the real server
against a bare endpoint, streaming, async workers, a soak run and how cost grows.

Benchmarks are not tests. ``python -m bench.run`` prints a table and writes docs/performance.md;
``--quick`` uses tiny sizes (CI smoke), ``--no-write`` leaves the document alone.
"""
