"""Entry point of the Django-side helpers: ``python -m bench.djside module.function '{"kw": ...}'``.

Sets Django up on the environment's ``DATABASE_URL`` (a temporary site), calls
``bench.<module>.<function>(**kwargs)`` and prints its result as one JSON line.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    import django

    django.setup()
    target, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    module_name, func_name = target.rsplit(".", 1)
    func = getattr(importlib.import_module(f"bench.{module_name}"), func_name)
    result = func(**json.loads(raw))
    from bench.common import emit

    emit(result)


if __name__ == "__main__":
    main()
