"""Node types: one module per type, listed in ``registry.py``."""
