"""Conversion at the Python edge: aware datetimes in and out, zoneinfo,
naive datetimes refused, clinics from a path or a dict, timedeltas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import medsched
from conftest import CLINIC_PATH, START_OF_TESTS, TENANT, Clock

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def test_aware_datetimes_in_any_zone_mean_the_same_instant(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    start_ny = datetime(2027, 3, 15, 0, 0, tzinfo=NY)
    end_ny = datetime(2027, 3, 16, 0, 0, tzinfo=NY)
    by_ny = engine.slots(admin, "consult", start_ny, end_ny)
    by_berlin = engine.slots(
        admin, "consult", start_ny.astimezone(BERLIN), end_ny.astimezone(BERLIN)
    )
    fixed = timezone(timedelta(hours=-4))
    by_fixed = engine.slots(admin, "consult", start_ny.astimezone(fixed), end_ny.astimezone(fixed))
    assert by_ny
    assert by_ny == by_berlin == by_fixed


def test_results_are_aware_utc_datetimes(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    slots = engine.slots(
        admin, "consult", datetime(2027, 3, 15, tzinfo=NY), datetime(2027, 3, 16, tzinfo=NY)
    )
    first = slots[0]
    assert isinstance(first.start, datetime)
    assert first.start.tzinfo is not None
    assert first.start.utcoffset() == timedelta(0)
    # 2027-03-15 is after the US DST switch: 09:00 in New York is 13:00 UTC.
    assert first.start == datetime(2027, 3, 15, 9, 0, tzinfo=NY)
    assert first.start.astimezone(NY).hour == 9
    assert first.end - first.start == timedelta(minutes=30)
    assert first.resource == "dr-ames"
    assert repr(first) == (
        "Slot(resource='dr-ames', start=2027-03-15T13:00:00+00:00, "
        "end=2027-03-15T13:30:00+00:00)"
    )
    assert len(set(slots)) == len(slots)  # hashable and distinct


@pytest.mark.parametrize("field", ["start", "end", "now"])
def test_naive_datetimes_are_refused(
    engine: medsched.Engine, admin: medsched.Principal, field: str
) -> None:
    args: dict[str, datetime] = {
        "start": datetime(2027, 3, 15, tzinfo=NY),
        "end": datetime(2027, 3, 16, tzinfo=NY),
        "now": START_OF_TESTS,
    }
    args[field] = datetime(2027, 3, 15, 12, 0)
    with pytest.raises(medsched.InvalidInputError) as caught:
        engine.slots(admin, "consult", args["start"], args["end"], now=args["now"])
    assert caught.value.code == "invalid_input"
    assert isinstance(caught.value, ValueError)
    assert f"invalid {field}: naive datetime" in str(caught.value)


def test_naive_booking_start_is_refused(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    with pytest.raises(medsched.InvalidInputError, match="naive datetime"):
        engine.book(admin, "consult", datetime(2027, 3, 15, 9, 0))


def test_non_datetimes_are_a_type_error(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    with pytest.raises(TypeError, match="must be a datetime.datetime"):
        engine.slots(admin, "consult", "2027-03-15", datetime(2027, 3, 16, tzinfo=NY))  # type: ignore[arg-type]


def test_clinic_loads_from_dict_str_and_pathlike(
    policy_toml: str, admin: medsched.Principal, clinic_dict: dict[str, Any], clock: Clock
) -> None:
    window = (datetime(2027, 3, 15, tzinfo=NY), datetime(2027, 3, 17, tzinfo=NY))
    results = []
    for clinic in (clinic_dict, str(CLINIC_PATH), Path(CLINIC_PATH)):
        engine = medsched.Engine.in_memory(policy_toml, clock=clock)
        assert engine.put_catalog(admin, clinic) >= 1
        results.append(engine.slots(admin, "consult", *window))
    assert results[0] and results[0] == results[1] == results[2]


def test_missing_clinic_file_is_a_file_not_found_error(
    policy_toml: str, admin: medsched.Principal, tmp_path: Path
) -> None:
    engine = medsched.Engine.in_memory(policy_toml)
    with pytest.raises(FileNotFoundError):
        engine.put_catalog(admin, tmp_path / "missing.json")


def test_appointment_fields_and_repr(engine: medsched.Engine, admin: medsched.Principal) -> None:
    start = datetime(2027, 3, 15, 10, 0, tzinfo=NY)
    a = engine.book(
        admin, "consult", start, resources=["dr-ames", "room-1"], patient="p-7"
    ).appointment
    assert isinstance(a, medsched.Appointment)
    assert (a.status, a.version, a.type_id, a.patient) == ("booked", 1, "consult", "p-7")
    assert a.start == start and a.start is not None and a.start.utcoffset() == timedelta(0)
    assert a.end == start + timedelta(minutes=30)
    assert a.resources == ["dr-ames", "room-1"]
    assert a.hold_expires_at is None
    assert repr(a) == (
        f"Appointment(id='{a.id}', status='booked', start=2027-03-15T14:00:00+00:00, "
        "end=2027-03-15T14:30:00+00:00, resources=['dr-ames', 'room-1'], version=1)"
    )
    assert engine.appointment(admin, a.id) == a


def test_python_clock_drives_the_engine_and_durations_are_timedeltas(
    policy_toml: str, admin: medsched.Principal, clinic_dict: dict[str, Any], clock: Clock
) -> None:
    for t in clinic_dict["appointment_types"]:
        t["reminders_min"] = [1440]
    engine = medsched.Engine.in_memory(policy_toml, clock=clock)
    engine.put_catalog(admin, clinic_dict)
    start = datetime(2027, 3, 16, 10, 0, tzinfo=NY)
    booked = engine.book(admin, "consult", start, patient="p-8").appointment
    drained = engine.claim_events(admin, "worker-1", lease=timedelta(seconds=30))
    assert [e.kind for e in drained] == ["booked"]
    assert drained[0].due_at == START_OF_TESTS
    assert not [e for e in drained if e.kind == "reminder_due"]
    clock.now = start - timedelta(hours=23)
    due = engine.claim_events(admin, "worker-1")
    reminders = [e for e in due if e.kind == "reminder_due"]
    assert len(reminders) == 1
    r = reminders[0]
    assert r.appointment == booked.id
    assert r.offset == timedelta(days=1)
    assert r.start == start
    assert r.due_at == start - timedelta(days=1)
    assert repr(r).startswith(f"Event(id={r.id}, kind='reminder_due', ")
    engine.ack_event(admin, r.id, "worker-1")


def test_clock_errors_propagate(policy_toml: str, admin: medsched.Principal) -> None:
    def broken() -> datetime:
        raise RuntimeError("clock unplugged")

    engine = medsched.Engine.in_memory(policy_toml, clock=broken)
    with pytest.raises(RuntimeError, match="clock unplugged"):
        engine.put_catalog(admin, CLINIC_PATH)
    naive = medsched.Engine.in_memory(policy_toml, clock=lambda: datetime(2027, 3, 1))
    with pytest.raises(medsched.InvalidInputError, match="invalid clock"):
        naive.put_catalog(admin, CLINIC_PATH)


def test_principal_is_a_value(admin: medsched.Principal) -> None:
    p = medsched.Principal(
        "u1", TENANT, roles=["patient"], patient="p-101", resources=(), departments=["cardio"]
    )
    assert (p.user, p.tenant, p.roles, p.patient, p.resources, p.departments) == (
        "u1",
        TENANT,
        ["patient"],
        "p-101",
        [],
        ["cardio"],
    )
    assert p == medsched.Principal("u1", TENANT, ["patient"], "p-101", [], ["cardio"])
    assert p != admin
    assert repr(p) == "Principal(user='u1', tenant='clinic-a', roles=['patient'])"
    with pytest.raises(TypeError):
        # `str` is a Sequence[str] to a type checker; the runtime refuses it.
        medsched.Principal("u1", TENANT, roles="patient")
