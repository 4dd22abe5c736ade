"""Runs, node runs and the event log; the executor; the run APIs in three dialects; tasks."""
