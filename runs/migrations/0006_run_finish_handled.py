"""``Run.finish_handled_at``: ``runs.lifecycle.run_finish`` claims a run's end-of-run work with a
conditional update on it (exactly once). Runs that ended before this migration count as handled."""

from django.db import migrations, models
from django.db.models import F


def existing_endings_handled(apps, schema_editor):  # noqa: ANN001, ANN201 (migration signature)
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(finished_at__isnull=False).update(finish_handled_at=F("finished_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0005_draft_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="finish_handled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(existing_endings_handled, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(condition=models.Q(("finish_handled_at__isnull", True), ("finished_at__isnull", False)),
                               fields=["finished_at"], name="run_finish_unhandled"),
        ),
    ]
