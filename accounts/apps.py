"""Django app config for accounts. Importing ``accounts.checks`` registers the deployment checks."""

from django.apps import AppConfig

from accounts import checks  # noqa: F401


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
