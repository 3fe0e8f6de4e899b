"""Settings of the medsched Django example. Only what the example needs: no
database models (the engine keeps appointments), no sessions, no admin.

Environment:
  MEDSCHED_POLICY_FILE, MEDSCHED_CLINIC_FILE  access policy (TOML) and clinic
      catalog (JSON or TOML); default: the repository's golden fixtures.
  MEDSCHED_TENANT          the tenant the catalog belongs to (default clinic-a).
  CELERY_BROKER_URL        e.g. redis://localhost:6379/0 or
      amqp://guest:guest@localhost:5672//; without it tasks run inline.
  CELERY_TASK_ALWAYS_EAGER "1"/"true" to run tasks inline even with a broker.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parents[2]
FIXTURES = REPO_ROOT / "fixtures"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "medsched-example-not-for-production")
DEBUG = _flag("DJANGO_DEBUG", False)
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = ["scheduling"]
# A JSON API authenticated by request headers (see scheduling/auth.py), not
# by cookies, so there is no session or CSRF middleware.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "clinic_site.urls"
APPEND_SLASH = False
# No models: the engine is the system of record here. An in-memory SQLite
# keeps Django's test runner content.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
TIME_ZONE = "UTC"

MEDSCHED_POLICY_FILE = Path(
    os.environ.get("MEDSCHED_POLICY_FILE", FIXTURES / "policy-clinic.toml")
)
MEDSCHED_CLINIC_FILE = Path(
    os.environ.get("MEDSCHED_CLINIC_FILE", FIXTURES / "demo-clinic.json")
)
MEDSCHED_TENANT = os.environ.get("MEDSCHED_TENANT", "clinic-a")
# Reminders this example adds to every appointment type of the catalog, in
# minutes before the start (the golden fixture defines none).
MEDSCHED_REMINDERS_MIN = [1440, 120]

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Without a broker (tests, a quick try-out) tasks run inline in the caller.
CELERY_TASK_ALWAYS_EAGER = _flag("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE = {
    "drain-reminders": {"task": "scheduling.tasks.drain_reminders", "schedule": 60.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"scheduling": {"handlers": ["console"], "level": "INFO"}},
}
