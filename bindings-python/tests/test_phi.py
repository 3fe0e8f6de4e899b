"""PHI redaction as a Python caller sees it: the receptionist gets `None`
for reason and notes; `repr` never shows them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

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
