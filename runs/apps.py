"""Django app config for runs: installs the execution layer into the lifecycle and hooks the durable
tick into django-q2 worker start-up."""

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django imports apps.py before the models exist: the project's modules can only be
        # imported here (the import-layer test allows exactly this place).
        from django_q.signals import post_spawn

        from runs import execution, lifecycle, scheduling

        lifecycle.execution_install(execution)
        post_spawn.connect(scheduling.tick_on_worker_start, dispatch_uid="weft-durable-tick-seed")
