"""medsched: a clinic scheduling engine with a Rust core.

Quick start::

    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    import medsched

    engine = medsched.Engine.in_memory(open("policy.toml").read())
    admin = medsched.Principal("admin", "clinic-a", roles=["clinic_admin"])
    engine.put_catalog(admin, "clinic.json")
    ny = ZoneInfo("America/New_York")
    start = datetime(2027, 3, 15, tzinfo=ny)
    for slot in engine.slots(admin, "consult", start, start + timedelta(days=1)):
        print(slot.resource, slot.start.astimezone(ny))
    booking = engine.book(admin, "consult", slot.start, patient="p-1")
    print(booking.appointment.id, booking.replayed)

Instants are timezone-aware ``datetime`` objects in and out (results are in
UTC; convert with ``astimezone``); naive datetimes raise
:class:`InvalidInputError`. Errors are subclasses of :class:`Error` with a
stable ``code``. An :class:`Engine` is thread-safe and releases the GIL while
it works; share one per process.
"""

from __future__ import annotations

from medsched._errors import (
    ConflictError,
    Error,
    IntegrityError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaTooNewError,
    SlotUnavailableError,
    StorageUnavailableError,
)
from medsched._medsched import (
    ERROR_CODES,
    Appointment,
    AuditRecord,
    Booking,
    Elevation,
    Engine,
    Event,
    Explanation,
    Guardianship,
    OccurrenceReport,
    Principal,
    Reason,
    SeriesBooking,
    Slot,
)

__all__ = [
    "ERROR_CODES",
    "Appointment",
    "AuditRecord",
    "Booking",
    "ConflictError",
    "Elevation",
    "Engine",
    "Error",
    "Event",
    "Explanation",
    "Guardianship",
    "IntegrityError",
    "InternalError",
    "InvalidInputError",
    "NotFoundError",
    "OccurrenceReport",
    "PermissionDeniedError",
    "Principal",
    "Reason",
    "SchemaTooNewError",
    "SeriesBooking",
    "Slot",
    "SlotUnavailableError",
    "StorageUnavailableError",
]
