"""The example end to end through Django's test client, and the Celery task
in eager mode. They share the module-level engine, so each test uses its own
day of the golden clinic."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.test import SimpleTestCase

from clinic_site.celery import app as celery_app
from scheduling.engine import CLOCK
from scheduling.tasks import drain_reminders

NY = ZoneInfo("America/New_York")
# Before every slot of the fixture, so notice and horizon never interfere.
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)
DESK = {"HTTP_X_USER": "u-desk", "HTTP_X_ROLES": "receptionist"}


class EngineTestCase(SimpleTestCase):
    def setUp(self) -> None:
        CLOCK.pinned = NOW

    def tearDown(self) -> None:
        CLOCK.pinned = None

    def slots(self, start: datetime, end: datetime, **headers: str) -> Any:
        response = self.client.get(
            "/slots",
            {"type": "consult", "from": start.isoformat(), "to": end.isoformat()},
            **(headers or DESK),
        )
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        return self.client.post(
            path, json.dumps(body), content_type="application/json", **(headers or DESK)
        )


class BookingFlowTests(EngineTestCase):
    def test_list_book_conflict_cancel_free_again(self) -> None:
        day = datetime(2027, 3, 16, 10, 0, tzinfo=NY)
        listed = self.slots(day, day + timedelta(hours=1))
        self.assertTrue(listed)
        first = listed[0]
        self.assertEqual(set(first), {"resource", "start", "end"})
        self.assertEqual(datetime.fromisoformat(first["start"]), day)

        booked = self.post("/book", {"type": "consult", "start": first["start"], "patient": "p-900"})
        self.assertEqual(booked.status_code, 201, booked.content)
        appointment = booked.json()
        self.assertEqual((appointment["status"], appointment["version"]), ("booked", 1))
        self.assertIn(first["resource"], appointment["resources"])
        self.assertNotIn(first, self.slots(day, day + timedelta(hours=1)))

        again = self.post("/book", {"type": "consult", "start": first["start"], "patient": "p-901"})
        self.assertEqual(again.status_code, 409, again.content)
        self.assertEqual(again.json()["error"], "slot_unavailable")

        stale = self.post("/cancel", {"id": appointment["id"], "version": 7})
        self.assertEqual((stale.status_code, stale.json()["error"]), (409, "version_conflict"))
        cancelled = self.post("/cancel", {"id": appointment["id"], "version": 1})
        self.assertEqual(cancelled.status_code, 200, cancelled.content)
        self.assertEqual((cancelled.json()["status"], cancelled.json()["version"]), ("cancelled", 2))
        self.assertIn(first, self.slots(day, day + timedelta(hours=1)))

    def test_idempotent_retry_is_replayed(self) -> None:
        start = datetime(2027, 3, 17, 11, 0, tzinfo=NY).isoformat()
        body = {"type": "consult", "start": start, "patient": "p-902"}
        first = self.post("/book", body, HTTP_IDEMPOTENCY_KEY="req-1", **DESK)
        retry = self.post("/book", body, HTTP_IDEMPOTENCY_KEY="req-1", **DESK)
        self.assertEqual((first.status_code, retry.status_code), (201, 200))
        self.assertEqual(first.json()["id"], retry.json()["id"])
        self.assertTrue(retry.json()["replayed"])

    def test_errors_map_to_statuses(self) -> None:
        start = datetime(2027, 3, 17, 14, 0, tzinfo=NY).isoformat()
        patient = {"HTTP_X_USER": "u-p1", "HTTP_X_ROLES": "patient", "HTTP_X_PATIENT": "p-1"}
        for_other = self.post("/book", {"type": "consult", "start": start, "patient": "p-2"}, **patient)
        self.assertEqual((for_other.status_code, for_other.json()["error"]), (403, "permission_denied"))
        anonymous = self.client.get("/slots", {"type": "consult"})
        self.assertEqual(anonymous.status_code, 401)
        naive = self.post("/book", {"type": "consult", "start": "2027-03-17T14:00:00"})
        self.assertEqual((naive.status_code, naive.json()["error"]), (400, "invalid_input"))
        missing = self.post("/cancel", {"id": "no-such-appointment", "version": 1})
        self.assertEqual((missing.status_code, missing.json()["error"]), (404, "not_found"))
        garbage = self.client.post("/book", b"not json", content_type="application/json", **DESK)
        self.assertEqual((garbage.status_code, garbage.json()["error"]), (400, "bad_request"))
        self.assertEqual(self.client.get("/book", **DESK).status_code, 405)


class DrainRemindersTests(EngineTestCase):
    def test_reminders_are_sent_when_due_and_acked_once(self) -> None:
        self.assertTrue(celery_app.conf.task_always_eager)
        self.assertEqual(settings.MEDSCHED_REMINDERS_MIN, [1440, 120])
        start = datetime(2027, 3, 18, 15, 0, tzinfo=NY)  # dr-baker, room-2
        booked = self.post(
            "/book", {"type": "consult", "start": start.isoformat(), "patient": "p-903"}
        )
        self.assertEqual(booked.status_code, 201, booked.content)
        appointment = booked.json()["id"]

        def ours(lines: list[str]) -> list[str]:
            return [line for line in lines if f"appointment={appointment}" in line]

        # Now: none of its reminders is due; its `booked` event is acked.
        with self.assertLogs("scheduling.tasks", "INFO") as logs:
            drained = drain_reminders.delay().get()
            logging.getLogger("scheduling.tasks").info("probe")
        self.assertTrue(drained["acked"])
        self.assertEqual(ours(logs.output), [])

        # 23 hours before: the 24-hour reminder is due, the 2-hour one is not.
        CLOCK.pinned = start - timedelta(hours=23)
        with self.assertLogs("scheduling.tasks", "INFO") as logs:
            day_before = drain_reminders.delay().get()
        sent = ours(logs.output)
        self.assertEqual(len(sent), 1)
        self.assertIn("offset=1 day", sent[0])
        event_ids = [e for e in day_before["sent"] if f"event={e} " in sent[0]]
        self.assertEqual(len(event_ids), 1)
        self.assertIn(event_ids[0], day_before["acked"])
        for line in logs.output:
            self.assertNotIn("p-9", line)  # ids of events and appointments, no patient
        # Acked: a second drain at the same instant finds nothing.
        self.assertEqual(drain_reminders.delay().get(), {"sent": [], "acked": []})

        CLOCK.pinned = start - timedelta(minutes=90)
        with self.assertLogs("scheduling.tasks", "INFO") as logs:
            drain_reminders.delay().get()
        sent = ours(logs.output)
        self.assertEqual(len(sent), 1)
        self.assertIn("offset=2:00:00", sent[0])
        self.assertEqual(drain_reminders.delay().get(), {"sent": [], "acked": []})
