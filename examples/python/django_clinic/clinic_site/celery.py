"""The Celery app: configured from Django settings (the `CELERY_` ones)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_site.settings")

app = Celery("clinic_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
