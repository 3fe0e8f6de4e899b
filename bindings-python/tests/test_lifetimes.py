"""Results own their data: they outlive the engine that made them; a
principal serves several engines."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import medsched

NY = ZoneInfo("America/New_York")


def test_results_outlive_their_engine(
    make_engine: Callable[[], medsched.Engine], admin: medsched.Principal
) -> None:
    def run() -> tuple[list[medsched.Slot], medsched.Appointment, list[medsched.Event]]:
        engine = make_engine()
        slots = engine.slots(
            admin, "consult", datetime(2027, 3, 16, tzinfo=NY), datetime(2027, 3, 17, tzinfo=NY)
        )
        booked = engine.book(admin, "consult", slots[0].start, patient="p-1").appointment
        return slots, booked, engine.claim_events(admin, "worker-1")

    slots, booked, events = run()
    gc.collect()
    assert slots[0].start == booked.start
    assert booked.status == "booked" and booked.resources
    assert events[0].appointment == booked.id
    assert "Appointment(" in repr(booked) and "Event(" in repr(events[0])


def test_engine_is_freed_when_unreferenced(
    make_engine: Callable[[], medsched.Engine], admin: medsched.Principal
) -> None:
    engine = make_engine()
    slots = engine.slots(
        admin, "consult", datetime(2027, 3, 16, tzinfo=NY), datetime(2027, 3, 17, tzinfo=NY)
    )
    # The clock callback is the only Python object an engine holds.
    probe = weakref.ref(engine)
    del engine
    gc.collect()
    assert probe() is None
    assert slots


def test_one_principal_many_engines(
    make_engine: Callable[[], medsched.Engine], admin: medsched.Principal
) -> None:
    first, second = make_engine(), make_engine()
    start = datetime(2027, 3, 16, 11, 0, tzinfo=NY)
    a = first.book(admin, "consult", start, patient="p-1").appointment
    b = second.book(admin, "consult", start, patient="p-1").appointment
    assert a.start == b.start
