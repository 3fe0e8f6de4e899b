"""The engine operations beyond slots/book/cancel: each one's arguments and
results cross the Python edge as documented, and its errors arrive as the
right family. Scheduling rules themselves are the Rust tests' business."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import medsched
from conftest import START_OF_TESTS, TENANT, Clock

NY = ZoneInfo("America/New_York")
FREE = datetime(2027, 3, 16, 11, 0, tzinfo=NY)  # dr-ames and room-1 are free


def test_book_returns_a_booking_with_replay_and_warnings(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    first = engine.book(admin, "consult", FREE, patient="p-1", idempotency_key="req-9")
    assert isinstance(first, medsched.Booking)
    assert isinstance(first.appointment, medsched.Appointment)
    assert (first.replayed, first.warnings) == (False, [])
    again = engine.book(admin, "consult", FREE, patient="p-1", idempotency_key="req-9")
    assert again.replayed is True
    assert again.appointment.id == first.appointment.id
    assert repr(again).startswith("Booking(appointment=Appointment(")
    assert repr(again).endswith("replayed=True, warnings=[])")


def test_booking_warnings_are_reason_codes(
    policy_toml: str, admin: medsched.Principal, clinic_dict: dict[str, Any], clock: Clock
) -> None:
    clinic_dict["settings"]["patient_overlap"] = "warn"
    engine = medsched.Engine.in_memory(policy_toml, clock=clock)
    engine.put_catalog(admin, clinic_dict)
    both = datetime(2027, 3, 16, 15, 0, tzinfo=NY)  # dr-ames and dr-baker both work
    engine.book(admin, "consult", both, resources=["dr-ames", "room-1"], patient="p-1")
    second = engine.book(admin, "consult", both, resources=["dr-baker", "room-2"], patient="p-1")
    assert second.warnings == ["patient_overlap"]


def test_hold_then_confirm(engine: medsched.Engine, admin: medsched.Principal) -> None:
    held = engine.hold(admin, "consult", FREE, ttl=timedelta(minutes=5), patient="p-1")
    assert isinstance(held, medsched.Booking) and held.replayed is False
    a = held.appointment
    assert a.status == "pending"
    assert a.hold_expires_at == START_OF_TESTS + timedelta(minutes=5)
    confirmed = engine.confirm(admin, a.id, a.version)
    assert (confirmed.status, confirmed.version, confirmed.hold_expires_at) == (
        "booked",
        a.version + 1,
        None,
    )


def test_hold_errors(engine: medsched.Engine, admin: medsched.Principal, clock: Clock) -> None:
    with pytest.raises(medsched.InvalidInputError, match="naive datetime"):
        engine.hold(admin, "consult", datetime(2027, 3, 16, 11, 0))
    a = engine.hold(admin, "consult", FREE, ttl=timedelta(minutes=5)).appointment
    clock.now = START_OF_TESTS + timedelta(minutes=10)
    with pytest.raises(medsched.ConflictError) as lapsed:
        engine.confirm(admin, a.id, a.version)
    assert lapsed.value.code == "hold_expired"
    with pytest.raises(medsched.NotFoundError):
        engine.confirm(admin, "no-such-appointment", 1)


def test_reschedule(engine: medsched.Engine, admin: medsched.Principal) -> None:
    a = engine.book(admin, "consult", FREE, patient="p-1").appointment
    later = FREE + timedelta(hours=3)
    moved = engine.reschedule(admin, a.id, a.version, later)
    assert (moved.id, moved.start, moved.version) == (a.id, later, a.version + 1)
    assert moved.start is not None and moved.start.utcoffset() == timedelta(0)
    with pytest.raises(medsched.ConflictError) as stale:
        engine.reschedule(admin, a.id, a.version, FREE)
    assert stale.value.code == "version_conflict"
    with pytest.raises(medsched.InvalidInputError, match="invalid new_start: naive"):
        engine.reschedule(admin, a.id, moved.version, datetime(2027, 3, 16, 9, 0))
    with pytest.raises(medsched.SlotUnavailableError):
        # appt-2 takes dr-ames and room-1 at 09:00 New York time.
        engine.reschedule(
            admin,
            a.id,
            moved.version,
            datetime(2027, 3, 16, 9, 0, tzinfo=NY),
            resources=["dr-ames", "room-1"],
        )


def test_transition_takes_fhir_codes(engine: medsched.Engine, admin: medsched.Principal) -> None:
    a = engine.book(admin, "consult", FREE, patient="p-1").appointment
    arrived = engine.transition(admin, a.id, a.version, "arrived")
    assert arrived.status == "arrived"
    checked_in = engine.book(admin, "consult", FREE + timedelta(hours=2)).appointment
    assert engine.transition(admin, checked_in.id, 1, "checked-in").status == "checked-in"
    with pytest.raises(medsched.InvalidInputError) as unknown:
        engine.transition(admin, a.id, arrived.version, "checked_in")
    assert unknown.value.code == "invalid_input"
    assert "unknown FHIR status `checked_in`" in str(unknown.value)
    with pytest.raises(medsched.ConflictError) as back:
        engine.transition(admin, a.id, arrived.version, "booked")
    assert back.value.code == "invalid_transition"


def test_book_series_takes_wall_time_in_its_zone(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    # Monday to Thursday at 10:00 New York; dr-ames is on vacation Thursday.
    dtstart = datetime(2027, 3, 15, 10, 0)
    done = engine.book_series(
        admin,
        "consult",
        "America/New_York",
        dtstart,
        "FREQ=DAILY;COUNT=4",
        resources=["dr-ames", "room-1"],
        patient="p-1",
        policy="book_free",
    )
    assert isinstance(done, medsched.SeriesBooking)
    assert done.truncated is False
    assert [a.start for a in done.booked] == [
        datetime(2027, 3, d, 10, 0, tzinfo=NY) for d in (15, 16, 17)
    ]
    assert all(isinstance(a, medsched.Appointment) for a in done.booked)
    occ = done.occurrences
    assert len(occ) == 4 and all(isinstance(o, medsched.OccurrenceReport) for o in occ)
    assert [o.bookable for o in occ] == [True, True, True, False]
    assert occ[0].assigned == ["dr-ames", "room-1"] and occ[0].conflicts == []
    assert occ[3].start == datetime(2027, 3, 18, 10, 0, tzinfo=NY)
    assert occ[3].end - occ[3].start == timedelta(minutes=30)
    assert ("dr-ames", ["time_off"]) in occ[3].conflicts
    for resource, reasons in occ[3].conflicts:
        assert resource is None or isinstance(resource, str)
        assert all(isinstance(r, str) for r in reasons)
    assert repr(done) == "SeriesBooking(booked=3, occurrences=4, truncated=False)"


def test_book_series_all_or_nothing_and_argument_errors(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    def series(**kw: Any) -> medsched.SeriesBooking:
        args: dict[str, Any] = {
            "zone": "America/New_York",
            "dtstart": datetime(2027, 3, 15, 10, 0),
            "rrule": "FREQ=DAILY;COUNT=4",
        }
        args.update(kw)
        return engine.book_series(
            admin,
            "consult",
            args.pop("zone"),
            args.pop("dtstart"),
            args.pop("rrule"),
            resources=["dr-ames", "room-1"],
            **args,
        )

    with pytest.raises(medsched.SlotUnavailableError):
        series()
    with pytest.raises(medsched.InvalidInputError, match="invalid dtstart: aware datetime"):
        series(dtstart=datetime(2027, 3, 15, 10, 0, tzinfo=NY))
    with pytest.raises(medsched.InvalidInputError, match="`sometimes`"):
        series(policy="sometimes")
    with pytest.raises(medsched.InvalidInputError) as zone:
        series(zone="Mars/Base")
    assert zone.value.code == "unknown_zone"
    with pytest.raises(medsched.InvalidInputError) as rule:
        series(rrule="FREQ=SOMETIMES")
    assert rule.value.code == "rrule_invalid"
    with pytest.raises(TypeError):
        series(dtstart="2027-03-15T10:00:00")


def test_explain_gives_reason_objects(engine: medsched.Engine, admin: medsched.Principal) -> None:
    free = engine.explain(admin, "consult", "dr-ames", FREE)
    assert isinstance(free, medsched.Explanation)
    assert (free.resource, free.start, free.bookable, free.reasons) == (
        "dr-ames",
        FREE,
        True,
        [],
    )
    assert free.end == FREE + timedelta(minutes=30)
    away = engine.explain(
        admin, "consult", "dr-ames", datetime(2027, 3, 18, 11, 0, tzinfo=NY), patient="p-1"
    )
    assert away.bookable is False
    assert [r.code for r in away.reasons] == ["time_off"]
    reason = away.reasons[0]
    assert isinstance(reason, medsched.Reason)
    assert reason.description == "overlaps time off `vacation-ames`"
    assert repr(reason) == "Reason(code='time_off')"
    assert "bookable=False, reasons=['time_off']" in repr(away)
    with pytest.raises(medsched.NotFoundError):
        engine.explain(admin, "consult", "dr-nobody", FREE)


def test_check_reports_conflicts_as_codes(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    ok = engine.check(admin, "consult", FREE, patient="p-1")
    assert isinstance(ok, medsched.OccurrenceReport)
    assert ok.bookable is True and len(ok.assigned) == 2
    assert (ok.conflicts, ok.warnings, ok.patient_conflicts) == ([], [], [])
    # appt-2 (patient p-102) takes dr-ames and room-1 at 09:00 New York time.
    taken = engine.check(
        admin,
        "consult",
        datetime(2027, 3, 16, 9, 0, tzinfo=NY),
        resources=["dr-ames", "room-1"],
        patient="p-102",
    )
    assert taken.bookable is False and taken.assigned == []
    assert ("dr-ames", ["overlap"]) in taken.conflicts
    assert taken.patient_conflicts == ["patient_overlap"]
    with pytest.raises(medsched.InvalidInputError, match="naive"):
        engine.check(admin, "consult", datetime(2027, 3, 16, 9, 0))


def test_add_waitlist(
    engine: medsched.Engine, admin: medsched.Principal, receptionist: medsched.Principal
) -> None:
    day = datetime(2027, 3, 16, tzinfo=NY)
    engine.add_waitlist(
        receptionist, "wl-1", "p-1", "consult", day, day + timedelta(days=1),
        resources=["dr-ames"], created_at=START_OF_TESTS,
    )
    with pytest.raises(medsched.ConflictError) as dup:
        engine.add_waitlist(receptionist, "wl-1", "p-1", "consult", day, day + timedelta(days=1))
    assert dup.value.code == "duplicate_id"
    with pytest.raises(medsched.InvalidInputError, match="invalid created_at: naive"):
        engine.add_waitlist(
            receptionist, "wl-2", "p-1", "consult", day, day + timedelta(days=1),
            created_at=datetime(2027, 3, 1),
        )
    other = medsched.Principal("u-p2", TENANT, roles=["patient"], patient="p-2")
    with pytest.raises(medsched.PermissionDeniedError):
        engine.add_waitlist(other, "wl-3", "p-1", "consult", day, day + timedelta(days=1))


def test_break_glass_and_elevated_principal(
    engine: medsched.Engine, receptionist: medsched.Principal
) -> None:
    nurse = medsched.Principal("u-nurse", TENANT, roles=["nurse"])
    with pytest.raises(medsched.PermissionDeniedError):
        engine.appointment(nurse, "appt-1")
    elevation = engine.break_glass(nurse, "p-101", "SENTINEL unconscious patient", 30)
    assert isinstance(elevation, medsched.Elevation)
    assert (elevation.patient, elevation.granted_at) == ("p-101", START_OF_TESTS)
    assert elevation.expires_at == START_OF_TESTS + timedelta(minutes=30)
    assert elevation.reason == "SENTINEL unconscious patient"
    assert "SENTINEL" not in repr(elevation) and "p-101" not in repr(elevation)

    elevated = nurse.with_elevation(elevation)
    assert nurse.elevations == [] and elevated.elevations == [elevation]
    assert elevated != nurse and elevated.user == nurse.user
    with pytest.raises(AttributeError):
        setattr(elevated, "elevations", [])  # principals are immutable
    assert engine.appointment(elevated, "appt-1").id == "appt-1"
    rebuilt = medsched.Elevation(
        elevation.patient, elevation.reason, elevation.granted_at, elevation.expires_at
    )
    assert rebuilt == elevation
    assert medsched.Principal("u-nurse", TENANT, ["nurse"], elevations=[rebuilt]) == elevated

    with pytest.raises(medsched.PermissionDeniedError) as denied:
        engine.break_glass(receptionist, "p-101", "curious", 30)
    assert denied.value.code == "permission_denied"
    for reason, minutes in [("  ", 30), ("emergency", 0), ("emergency", -5), ("emergency", 10**6)]:
        with pytest.raises(medsched.InvalidInputError):
            engine.break_glass(nurse, "p-101", reason, minutes)
    with pytest.raises(medsched.InvalidInputError, match="invalid granted_at: naive"):
        medsched.Elevation("p-1", "r", datetime(2027, 3, 1), START_OF_TESTS)


def test_guardianships_reach_the_core(engine: medsched.Engine) -> None:
    ward = medsched.Guardianship("p-101", valid_from=START_OF_TESTS - timedelta(days=1))
    assert (ward.patient, ward.valid_from, ward.until) == (
        "p-101",
        START_OF_TESTS - timedelta(days=1),
        None,
    )
    assert "p-101" not in repr(ward)
    parent = medsched.Principal("u-parent", TENANT, roles=["guardian"], guardianships=[ward])
    assert parent.guardianships == [ward]
    assert engine.appointment(parent, "appt-1").patient == "p-101"
    lapsed = medsched.Guardianship("p-101", until=START_OF_TESTS - timedelta(days=1))
    stranger = medsched.Principal("u-parent", TENANT, roles=["guardian"], guardianships=[lapsed])
    with pytest.raises(medsched.PermissionDeniedError):
        engine.appointment(stranger, "appt-1")
    with pytest.raises(medsched.InvalidInputError, match="invalid until: naive"):
        medsched.Guardianship("p-101", until=datetime(2027, 1, 1))
    with pytest.raises(TypeError):
        medsched.Principal("u", TENANT, guardianships=["p-101"])  # type: ignore[list-item]


def test_audit_trail_and_verify(
    make_engine: Callable[[], medsched.Engine], admin: medsched.Principal
) -> None:
    engine = make_engine()
    auditor = medsched.Principal("u-audit", TENANT, roles=["auditor"])
    engine.book(admin, "consult", FREE, patient="p-1")
    nurse = medsched.Principal("u-nurse", TENANT, roles=["nurse"])
    engine.break_glass(nurse, "p-101", "emergency", 10)
    trail = engine.audit_trail(auditor)
    assert [r.seq for r in trail] == list(range(1, len(trail) + 1))
    assert all(isinstance(r, medsched.AuditRecord) for r in trail)
    first = trail[0]
    assert (first.actor, first.action, first.decision) == ("u-admin", "catalog.manage", "allow")
    assert first.at == START_OF_TESTS and first.policy_version == "clinic-2027.1"
    assert isinstance(first.record, str) and isinstance(first.reason_code, str)
    glass = [r for r in trail if r.break_glass]
    assert [(r.action, r.actor, r.record) for r in glass] == [
        ("break_glass.use", "u-nurse", "p-101")
    ]
    assert repr(first).startswith("AuditRecord(seq=1, at=2027-03-01T08:00:00+00:00, ")
    assert [r.seq for r in engine.audit_trail(auditor, from_seq=2, max=2)] == [2, 3]
    assert engine.verify_audit(auditor) == len(engine.audit_trail(auditor))
    with pytest.raises(medsched.PermissionDeniedError):
        engine.audit_trail(admin)
    with pytest.raises(medsched.PermissionDeniedError):
        engine.verify_audit(admin)
