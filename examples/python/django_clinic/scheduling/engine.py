"""The one engine of this process, built at import from the settings.

`medsched.Engine` is thread-safe and releases the GIL while it works, so one
module-level instance serves every request thread of a Django process and
every task of a Celery worker process. With the in-memory store each process
has its own appointments; a deployment with web and worker processes uses
`medsched.Engine.postgres(...)` instead, with the same calls.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import medsched
from django.conf import settings


class Clock:
    """The engine's clock: the system time unless `pinned` (tests pin it to
    make reminders due without waiting a day)."""

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned if self.pinned is not None else datetime.now(timezone.utc)


CLOCK = Clock()
TENANT: str = settings.MEDSCHED_TENANT
# The service principals of this app (not end users): catalog loading and
# the outbox drain. Their roles come from the policy file.
SYSTEM = medsched.Principal("system:catalog", TENANT, roles=["clinic_admin"])
WORKER = medsched.Principal("system:celery", TENANT, roles=["clinic_admin"])


def load_clinic() -> dict[str, Any]:
    """The clinic catalog with this app's reminders added to each type."""
    clinic: dict[str, Any] = json.loads(settings.MEDSCHED_CLINIC_FILE.read_text())
    for appointment_type in clinic.get("appointment_types", []):
        appointment_type.setdefault("reminders_min", list(settings.MEDSCHED_REMINDERS_MIN))
    return clinic


def build() -> medsched.Engine:
    engine = medsched.Engine.in_memory(settings.MEDSCHED_POLICY_FILE.read_text(), clock=CLOCK)
    engine.put_catalog(SYSTEM, load_clinic())
    return engine


ENGINE = build()
