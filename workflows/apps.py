"""Django app config for workflows: imports the extra node type modules named in
``WEFT_EXTRA_NODE_MODULES`` (each registers its node types; the tests' hostile nodes)."""

import importlib

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class WorkflowsConfig(AppConfig):
    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.stamp import stamp_install

        # After every migrate (its tables exist by then): the resolution stamp's table and triggers.
        post_migrate.connect(stamp_install, sender=self, dispatch_uid="weft-stamp-install")
        for module in settings.WEFT_EXTRA_NODE_MODULES:
            importlib.import_module(module)
