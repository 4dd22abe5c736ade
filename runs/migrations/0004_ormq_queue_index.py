"""An index for django-q2's ORM broker queue, which ships without one.

The broker dequeues with ``key = <cluster> AND lock < now`` (``django_q.brokers.orm``). Parked
runs are queue rows whose lock is their wake time (``runs.scheduling.task_enqueue_at``), so
without an index every poll of every cluster scans all of them: 10,000 parked runs slowed the
workers by a third. With it, a dequeue is an index range scan whatever the number of parked runs.
"""

from django.db import migrations

INDEX = "weft_ormq_key_lock"


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0003_durable"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON django_q_ormq (key, lock)",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
