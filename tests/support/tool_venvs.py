"""Virtual environments for real client packages whose dependencies cannot share the test venv.

``dify-api-client`` and ``dify-client-python`` both install a top-level ``dify_client`` package, so
each client under test gets a venv of its own, with exactly the pinned requirements, installed by
pip from the package index as a user would. Venvs are cached between runs under
``WEFT_TOOL_VENVS`` (default ``~/.cache/weft-test-venvs``), keyed by the requirements, so only the
first run pays for the install. ``tool_python`` returns the venv's interpreter; tests drive the
client in a subprocess against a live server (``tool_run``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("WEFT_TOOL_VENVS", Path.home() / ".cache" / "weft-test-venvs"))
INSTALL_TIMEOUT = 600


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tool_python(name: str, requirements: list[str]) -> Path:
    """The interpreter of a venv with ``requirements`` installed (made once, then reused)."""
    digest = hashlib.sha256(json.dumps([sys.version_info[:2], sorted(requirements)]).encode()).hexdigest()[:12]
    home = ROOT / f"{name}-{digest}"
    python = home / "bin" / "python"
    ROOT.mkdir(parents=True, exist_ok=True)
    with _locked(home.with_suffix(".lock")):  # pytest-xdist workers may ask at once
        if (home / ".installed").exists():
            return python
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                       check=True, timeout=INSTALL_TIMEOUT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        (home / ".installed").write_text("\n".join(requirements))
    return python


def tool_run(python: Path, script: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run ``script`` with the venv's interpreter; it prints one JSON document, returned parsed."""
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"client script failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
