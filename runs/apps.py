"""Django app config for runs: hooks the durable tick into django-q2 worker start-up."""

from typing import Any

from django.apps import AppConfig


def _tick_on_worker_start(sender: Any, proc_name: str = "", **kwargs: Any) -> None:
    """A (re)started worker seeds the durable tick chain: a chain whose link was lost with a killed
    cluster restarts as soon as any cluster starts, not only at the minute watchdog. A live chain
    makes the extra link a no-op (``runs.scheduling.durable_tick`` claims each interval once)."""
    from runs.scheduling import tick_seed

    tick_seed()


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(_tick_on_worker_start, dispatch_uid="weft-durable-tick-seed")
