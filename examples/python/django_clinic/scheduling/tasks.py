"""Celery tasks: draining the engine's outbox."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from celery import shared_task

from scheduling.engine import ENGINE, WORKER

log = logging.getLogger(__name__)
# A claim is leased to one worker; another worker may take it over once the
# lease lapses (a crash mid-delivery), so delivery is at least once.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
LEASE = timedelta(minutes=2)


@shared_task
def drain_reminders(max_events: int = 100) -> dict[str, list[int]]:
    """Claims due outbox events, "sends" the reminders (logs ids only: no
    patient data in logs) and acknowledges every claimed event; in this
    example the other kinds (booked, cancelled ...) have no consumer and are
    acknowledged as they are. Returns the event ids it sent and acknowledged."""
    sent: list[int] = []
    acked: list[int] = []
    for event in ENGINE.claim_events(WORKER, WORKER_ID, max=max_events, lease=LEASE):
        if event.kind == "reminder_due":
            # A real app hands event.appointment to its messaging service here.
            log.info(
                "reminder sent: event=%s appointment=%s offset=%s",
                event.id,
                event.appointment,
                event.offset,
            )
            sent.append(event.id)
        ENGINE.ack_event(WORKER, event.id, WORKER_ID)
        acked.append(event.id)
    return {"sent": sent, "acked": acked}
