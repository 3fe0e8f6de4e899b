"""Every error family: class, builtin base and `.code`, raised from Python,
through the native mapping, and by the engine itself."""

from __future__ import annotations

import pickle
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import medsched
from medsched import _medsched
from conftest import TENANT

NY = ZoneInfo("America/New_York")

# The families the issue asks for, with the builtin each also subclasses.
FAMILIES: dict[type[medsched.Error], tuple[type[Exception] | None, set[str]]] = {
    medsched.InvalidInputError: (
        ValueError,
        {
            "invalid_input",
            "unknown_zone",
            "rrule_invalid",
            "end_before_start",
            "window_too_large",
            "malformed_document",
            "document_too_large",
            "policy_invalid",
            "recurrence_too_large",
            "output_too_large",
        },
    ),
    medsched.NotFoundError: (LookupError, {"not_found"}),
    medsched.PermissionDeniedError: (PermissionError, {"permission_denied"}),
    medsched.SlotUnavailableError: (None, {"slot_unavailable"}),
    medsched.ConflictError: (
        None,
        {
            "version_conflict",
            "idempotency_mismatch",
            "invalid_transition",
            "hold_expired",
            "duplicate_id",
            "lease_lost",
        },
    ),
    medsched.StorageUnavailableError: (ConnectionError, {"storage_unavailable"}),
    medsched.IntegrityError: (None, {"integrity_error"}),
    medsched.SchemaTooNewError: (RuntimeError, {"schema_too_new"}),
    medsched.InternalError: (RuntimeError, {"internal_error"}),
}
FAMILY_OF = {code: cls for cls, (_, codes) in FAMILIES.items() for code in codes}


def test_every_rust_error_code_has_a_python_family() -> None:
    codes = set(_medsched.ERROR_CODES)
    assert len(codes) == len(_medsched.ERROR_CODES) > 0
    unmapped = sorted(c for c in codes if _medsched._error_class_name(c) is None)
    assert not unmapped, f"Rust error codes without a Python exception: {unmapped}"
    assert codes == set(FAMILY_OF), "this test's table is out of date"
    assert medsched.ERROR_CODES == _medsched.ERROR_CODES


def _documented_error_codes() -> set[str]:
    """The codes in the error tables of docs/error-codes.md (the core's and
    the PostgreSQL adapter's sections; reason codes are not errors)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "error-codes.md").read_text()
    codes: set[str] = set()
    for section in doc.split("\n## ")[1:]:
        title = section.splitlines()[0]
        if not title.startswith(("Core", "PostgreSQL adapter")):
            continue
        codes |= set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    return codes


def test_every_documented_code_has_a_python_class() -> None:
    documented = _documented_error_codes()
    assert {"not_found", "internal_error", "schema_too_new"} <= documented
    unmapped = sorted(c for c in documented if _medsched._error_class_name(c) is None)
    assert not unmapped, f"codes in docs/error-codes.md without a Python exception: {unmapped}"
    assert documented <= set(_medsched.ERROR_CODES), "a documented code the core does not list"


def test_a_panic_in_the_engine_reaches_python_as_internal_error(engine: medsched.Engine) -> None:
    with pytest.raises(medsched.InternalError) as caught:
        engine._panic_for_test()
    assert caught.value.code == "internal_error"
    assert isinstance(caught.value, RuntimeError)
    assert "test panic" not in str(caught.value)


@pytest.mark.parametrize("cls", list(FAMILIES))
def test_each_family_raised_from_python(cls: type[medsched.Error]) -> None:
    builtin, codes = FAMILIES[cls]
    code = sorted(codes)[0]
    with pytest.raises(cls) as caught:
        raise cls("something went wrong", code)
    e = caught.value
    assert isinstance(e, medsched.Error) and isinstance(e, Exception)
    if builtin is not None:
        assert isinstance(e, builtin)
    assert e.code == code
    assert str(e) == "something went wrong"
    # Celery ships exceptions between processes.
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.code == code and str(back) == str(e)


@pytest.mark.parametrize("code", sorted(_medsched.ERROR_CODES))
def test_each_code_through_the_native_mapping(code: str) -> None:
    cls = FAMILY_OF[code]
    with pytest.raises(medsched.Error) as caught:
        _medsched._raise_sample_error(code)
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert _medsched._error_class_name(code) == cls.__name__
    builtin = FAMILIES[cls][0]
    if builtin is not None:
        assert isinstance(caught.value, builtin)


def test_engine_raises_invalid_input(
    engine: medsched.Engine, admin: medsched.Principal, policy_toml: str
) -> None:
    start = datetime(2027, 3, 16, tzinfo=NY)
    with pytest.raises(ValueError) as caught:
        engine.slots(admin, "consult", start, start - timedelta(days=1))
    assert isinstance(caught.value, medsched.InvalidInputError)
    assert caught.value.code == "end_before_start"
    with pytest.raises(medsched.InvalidInputError) as window:
        engine.slots(admin, "consult", start, start + timedelta(days=900))
    assert window.value.code == "window_too_large"
    with pytest.raises(medsched.InvalidInputError) as policy:
        medsched.Engine.in_memory(policy_toml.replace('"slots.read"', '"slots.peek"'))
    assert policy.value.code == "policy_invalid"
    with pytest.raises(medsched.InvalidInputError) as malformed:
        engine.put_catalog(admin, {"resources": [{"id": "x", "zone": "UTC", "colour": 1}]})
    assert malformed.value.code == "malformed_document"
    with pytest.raises(medsched.InvalidInputError) as zone:
        engine.put_catalog(admin, {"resources": [{"id": "x", "zone": "Mars/Base"}]})
    assert zone.value.code == "unknown_zone"


def test_engine_raises_not_found(engine: medsched.Engine, admin: medsched.Principal) -> None:
    with pytest.raises(LookupError) as caught:
        engine.appointment(admin, "no-such-appointment")
    assert isinstance(caught.value, medsched.NotFoundError)
    assert caught.value.code == "not_found"


def test_engine_raises_permission_denied(engine: medsched.Engine) -> None:
    patient = medsched.Principal("u-p101", TENANT, roles=["patient"], patient="p-101")
    with pytest.raises(PermissionError) as caught:
        engine.appointment(patient, "appt-2")  # another patient's
    assert isinstance(caught.value, medsched.PermissionDeniedError)
    assert caught.value.code == "permission_denied"
    stranger = medsched.Principal("u-x", "other-tenant", roles=["clinic_admin"])
    with pytest.raises(medsched.Error):
        engine.appointment(stranger, "appt-1")


def test_engine_raises_slot_unavailable(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    start = datetime(2027, 3, 16, 11, 0, tzinfo=NY)
    engine.book(admin, "consult", start, resources=["dr-ames", "room-1"], patient="p-1")
    with pytest.raises(medsched.SlotUnavailableError) as caught:
        engine.book(admin, "consult", start, resources=["dr-ames", "room-2"], patient="p-2")
    assert caught.value.code == "slot_unavailable"


def test_engine_raises_conflicts(engine: medsched.Engine, admin: medsched.Principal) -> None:
    start = datetime(2027, 3, 16, 11, 0, tzinfo=NY)
    a = engine.book(
        admin, "consult", start, patient="p-1", idempotency_key="req-1"
    ).appointment
    with pytest.raises(medsched.ConflictError) as stale:
        engine.cancel(admin, a.id, a.version + 5, "patient_request")
    assert stale.value.code == "version_conflict"
    with pytest.raises(medsched.ConflictError) as reused:
        engine.book(admin, "consult", start + timedelta(hours=1), patient="p-1", idempotency_key="req-1")
    assert reused.value.code == "idempotency_mismatch"
    cancelled = engine.cancel(admin, a.id, a.version, "patient_request")
    assert cancelled.status == "cancelled" and cancelled.version == a.version + 1
    events = engine.claim_events(admin, "worker-1")
    assert events
    with pytest.raises(medsched.ConflictError) as lease:
        engine.ack_event(admin, events[0].id, "worker-2")
    assert lease.value.code == "lease_lost"
