"""PHI redaction as a Python caller sees it: the receptionist gets `None`
for reason and notes; `repr` never shows them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import medsched
from conftest import TENANT

NY = ZoneInfo("America/New_York")
SECRET_REASON = "SENTINEL chest pain"
SECRET_NOTES = "SENTINEL notes"


def test_receptionist_sees_no_phi_patient_does(
    engine: medsched.Engine, receptionist: medsched.Principal
) -> None:
    booked = engine.book(
        receptionist,
        "consult",
        datetime(2027, 3, 16, 11, 0, tzinfo=NY),
        patient="p-101",
        reason=SECRET_REASON,
        notes=SECRET_NOTES,
    ).appointment
    # The front desk books for anyone but never reads PHI, not even its own input.
    assert booked.reason is None and booked.notes is None
    seen = engine.appointment(receptionist, booked.id)
    assert seen.reason is None and seen.notes is None
    assert seen.patient == "p-101"

    patient = medsched.Principal("u-p101", TENANT, roles=["patient"], patient="p-101")
    own = engine.appointment(patient, booked.id)
    assert own.reason == SECRET_REASON
    assert own.notes == SECRET_NOTES
    for shown in (repr(own), str(own), repr(seen)):
        assert "SENTINEL" not in shown


SECRET_NOTE = "SENTINEL-C moving to hospice"
SECRET_GLASS = "SENTINEL-B unconscious"
MARKS = ("SENTINEL", "98765432101")


def _clean(label: str, text: str) -> None:
    for mark in MARKS:
        assert mark not in text, f"{label} shows {mark}: {text}"
    assert "\x1b" not in text and "\x07" not in text, f"{label}: {text!r}"


def _event_text(e: medsched.Event) -> str:
    return " ".join(
        str(v)
        for v in (
            repr(e), e.kind, e.appointment, e.patient, e.status, e.actor,
            e.reason_code, e.waitlist_entry,
        )
    )


def _audit_text(r: medsched.AuditRecord) -> str:
    return " ".join(
        str(v)
        for v in (repr(r), r.actor, r.action, r.record, r.decision, r.reason_code, r.policy_version)
    )


def test_cancellation_note_is_phi_and_never_reaches_events_or_audit(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    booked = engine.book(
        admin,
        "consult",
        datetime(2027, 3, 16, 11, 0, tzinfo=NY),
        patient="p-101",
        reason=SECRET_REASON,
        notes=SECRET_NOTES,
    ).appointment
    with pytest.raises(medsched.InvalidInputError) as bad:
        engine.cancel(admin, booked.id, booked.version, SECRET_NOTE)
    assert bad.value.code == "invalid_input"
    assert "`patient_request`" in str(bad.value)
    _clean("unknown reason code", str(bad.value))
    cancelled = engine.cancel(
        admin, booked.id, booked.version, "patient_request", note=SECRET_NOTE
    )
    assert cancelled.status == "cancelled"
    _clean("cancelled repr", repr(cancelled))
    patient = medsched.Principal("u-p101", TENANT, roles=["patient"], patient="p-101")
    own = engine.appointment(patient, booked.id)
    assert own.notes == f"{SECRET_NOTES}\ncancellation note: {SECRET_NOTE}"

    doctor = medsched.Principal("u-doc", TENANT, roles=["provider"], resources=["dr-ames"])
    elevation = engine.break_glass(doctor, "p-101", SECRET_GLASS, 30)
    _clean("elevation repr", repr(elevation))

    events = engine.claim_events(admin, "worker-1")
    assert any(e.kind == "cancelled" and e.reason_code == "patient_request" for e in events)
    for e in events:
        _clean("event", _event_text(e))
    auditor = medsched.Principal("u-aud", TENANT, roles=["auditor"])
    trail = engine.audit_trail(auditor)
    assert trail
    for r in trail:
        _clean("audit record", _audit_text(r))


MALFORMED_CLINICS = [
    {"appointments": [{"id": "a1", "resources": [], "status": "SENTINEL1"}]},
    {"resources": [{"id": 98765432101, "zone": "UTC"}]},
    {"resources": [{"id": "dr-a", "zone": "UTC", "capacity": 98765432101}]},
    {"resources": [{"id": "dr-a", "zone": "UTC", "SENTINEL2": 1}]},
    {"resources": 'a"SENTINEL3"b'},
    {"appointments": [{"id": "a1", "resources": [], "reason": ["SENTINEL-R"]}]},
    {
        "resources": [{"id": "dr-a", "zone": "UTC"}],
        "working_hours": [
            {
                "resource": "dr-a",
                "dtstart": "2027-03-01T09:00:00",
                "end": "12:00:00",
                "rrule": "FREQ=SENTINEL4",
            }
        ],
    },
]


@pytest.mark.parametrize("clinic", MALFORMED_CLINICS)
def test_malformed_clinics_raise_without_planted_text(
    engine: medsched.Engine, admin: medsched.Principal, clinic: dict[str, object]
) -> None:
    with pytest.raises(medsched.InvalidInputError) as caught:
        engine.put_catalog(admin, clinic)
    assert caught.value.code in ("malformed_document", "rrule_invalid")
    _clean("clinic error", str(caught.value))
    _clean("clinic error repr", repr(caught.value))


@pytest.mark.parametrize(
    "policy",
    [
        'version = "v"\n[roles.a]\nSENTINEL2 = 1\n',
        'version = "v"\n[break_glass]\nmax_minutes = 98765432101\n',
        'version = ["a\\"SENTINEL3\\"b"]\n',
        "version = SENTINEL5\n",
    ],
)
def test_malformed_policies_raise_without_planted_text(policy: str) -> None:
    with pytest.raises(medsched.InvalidInputError) as caught:
        medsched.Engine.in_memory(policy)
    assert caught.value.code == "malformed_document"
    _clean("policy error", str(caught.value))


def test_clinic_files_are_capped_and_utf8(
    engine: medsched.Engine, admin: medsched.Principal, tmp_path: Path
) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"resources": [{"id": "dr-\xe9"}]}')
    with pytest.raises(medsched.InvalidInputError) as caught:
        engine.put_catalog(admin, latin1)
    assert caught.value.code == "malformed_document"
    with pytest.raises(medsched.InvalidInputError) as big:
        engine.put_catalog(admin, "/dev/zero")
    assert big.value.code == "document_too_large"


def test_ids_with_control_characters_are_escaped(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    clinic = {
        "resources": [{"id": "dr-a", "zone": "Mars/\x1b[2J\x07"}],
    }
    with pytest.raises(medsched.InvalidInputError) as caught:
        engine.put_catalog(admin, clinic)
    assert caught.value.code == "unknown_zone"
    assert "\\u{1b}[2J\\u{7}" in str(caught.value)
    _clean("zone error", str(caught.value))
