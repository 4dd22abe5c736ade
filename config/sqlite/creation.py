"""Test databases: destroying one also removes the files kept next to it (writer queue, cache,
WAL files, the demo's token file), so test sessions leave nothing behind in the data dir."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.conf import settings
from django.db.backends.sqlite3 import creation

COMPANIONS = ("-wal", "-shm", "-writers", "-cache", "-cache-wal", "-cache-shm", "-cache-writers")


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)
        if test_database_name and not self.is_in_memory_db(test_database_name):
            for suffix in COMPANIONS:
                with contextlib.suppress(OSError):
                    os.remove(f"{test_database_name}{suffix}")
            with contextlib.suppress(OSError):
                (Path(settings.DATA_DIR) / f"demo-tokens-{Path(test_database_name).name}.json").unlink()
