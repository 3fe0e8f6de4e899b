"""Native core of medsched (PyO3). Import from ``medsched``, not from here.

Instants are timezone-aware ``datetime`` objects: any ``tzinfo`` is accepted
(``zoneinfo.ZoneInfo``, ``datetime.timezone``), results are in UTC. A naive
datetime raises ``medsched.InvalidInputError``. Engine methods release the GIL
while the engine works.
"""

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, final

__all__ = [
    "Principal",
    "Slot",
    "Appointment",
    "Event",
    "Engine",
    "ERROR_CODES",
    "_error_class_name",
    "_raise_sample_error",
]

ERROR_CODES: tuple[str, ...]
"""Every error code the engine can report (``Error.code`` values)."""

@final
class Principal:
    """Who is asking: a user in a tenant, with role names from the policy.

    ``patient`` is the user's own patient id (scope ``own``), ``resources``
    the user's provider resources (scope ``assigned``), ``departments`` the
    user's departments (scope ``department``).
    """

    def __new__(
        cls,
        user: str,
        tenant: str,
        roles: Sequence[str] = ...,
        patient: str | None = None,
        resources: Sequence[str] = ...,
        departments: Sequence[str] = ...,
    ) -> Principal: ...
    @property
    def user(self) -> str:
        """User id (recorded in the audit trail)."""
    @property
    def tenant(self) -> str:
        """Tenant id; a principal never crosses tenants."""
    @property
    def roles(self) -> list[str]:
        """Role names from the policy."""
    @property
    def patient(self) -> str | None:
        """The user's own patient id, if the user is a patient."""
    @property
    def resources(self) -> list[str]:
        """The user's provider resources."""
    @property
    def departments(self) -> list[str]:
        """The user's departments."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Slot:
    """One resource able to take part in a booking at one start."""

    @property
    def resource(self) -> str:
        """Resource id."""
    @property
    def start(self) -> datetime:
        """Start instant (aware, UTC)."""
    @property
    def end(self) -> datetime:
        """End instant (aware, UTC), exclusive; buffers not included."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Appointment:
    """An appointment as this principal may see it.

    ``reason`` and ``notes`` are protected health information: ``None`` when
    the principal may not read PHI (a receptionist), and never in ``repr``.
    """

    @property
    def id(self) -> str:
        """Appointment id."""
    @property
    def version(self) -> int:
        """Version; pass it as ``expected_version`` to change the appointment."""
    @property
    def status(self) -> str:
        """FHIR R4 status code (``booked``, ``cancelled``, ``checked-in`` ...)."""
    @property
    def type_id(self) -> str | None:
        """Appointment type id."""
    @property
    def start(self) -> datetime | None:
        """Start instant (aware, UTC)."""
    @property
    def end(self) -> datetime | None:
        """End instant (aware, UTC), exclusive."""
    @property
    def resources(self) -> list[str]:
        """Resource ids it takes."""
    @property
    def patient(self) -> str | None:
        """Patient id (an opaque reference)."""
    @property
    def hold_expires_at(self) -> datetime | None:
        """For a hold: when it lapses."""
    @property
    def reason(self) -> str | None:
        """Reason for visit (PHI); ``None`` when redacted or absent."""
    @property
    def notes(self) -> str | None:
        """Clinical notes (PHI); ``None`` when redacted or absent."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Event:
    """An outbox event claimed by a worker. Ids and instants only, no PHI."""

    @property
    def id(self) -> int:
        """Event id; pass it to ``Engine.ack_event``."""
    @property
    def tenant(self) -> str:
        """Tenant id."""
    @property
    def kind(self) -> str:
        """``booked``, ``held``, ``cancelled``, ``rescheduled``,
        ``status_changed``, ``reminder_due`` or ``waitlist_offer``."""
    @property
    def due_at(self) -> datetime:
        """When it became deliverable (aware, UTC)."""
    @property
    def attempts(self) -> int:
        """How many times it has been claimed, this claim included."""
    @property
    def appointment(self) -> str | None:
        """The appointment id."""
    @property
    def patient(self) -> str | None:
        """The patient id."""
    @property
    def start(self) -> datetime | None:
        """The appointment's start (aware, UTC)."""
    @property
    def offset(self) -> timedelta | None:
        """For a reminder: how long before the start."""
    @property
    def waitlist_entry(self) -> str | None:
        """For a waitlist offer: the entry id."""
    @property
    def status(self) -> str | None:
        """For a status change: the new FHIR status code."""
    @property
    def actor(self) -> str | None:
        """Who made the change (a user id)."""
    @property
    def reason_code(self) -> str | None:
        """Why, as a code (``patient_request`` ...)."""

@final
class Engine:
    """A scheduling engine. Thread-safe: share one per process.

    Every operation takes the ``Principal`` who asks; the access policy
    decides, the audit trail records, and PHI is redacted unless allowed.
    """

    @staticmethod
    def in_memory(
        policy_toml: str, clock: Callable[[], datetime] | None = None
    ) -> Engine:
        """An engine over an in-memory store, with the access policy given
        as TOML text.

        ``clock`` returns the current instant (an aware ``datetime``); it is
        called once per engine call, and its exceptions propagate. Without
        it the system clock is used.

        Raises ``InvalidInputError`` (``malformed_document``,
        ``policy_invalid``) for a bad policy.
        """
    def put_catalog(
        self, principal: Principal, clinic: Mapping[str, Any] | str | os.PathLike[str]
    ) -> int:
        """Validates and stores the principal's tenant catalog (resources,
        working hours, time off, appointment types; appointments in it are
        imported). ``clinic`` is a JSON-compatible dict or a path to a
        ``.json`` or ``.toml`` file. Returns the catalog version.

        Needs ``catalog.manage``.
        """
    def slots(
        self,
        principal: Principal,
        type_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime | None = None,
        resources: Sequence[str] | None = None,
    ) -> list[Slot]:
        """Every (resource, start) able to take part in an appointment of
        ``type_id`` starting in ``[start, end)``, sorted by resource id then
        start. ``now`` (default: the engine clock) is where minimum notice
        and horizon count from; ``resources`` restricts the candidates.

        Needs ``slots.read``.
        """
    def book(
        self,
        principal: Principal,
        type_id: str,
        start: datetime,
        *,
        resources: Sequence[str] | None = None,
        patient: str | None = None,
        reason: str | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
        overbook: bool = False,
        bypass_notice: bool = False,
    ) -> Appointment:
        """Books one appointment; without ``resources`` the engine assigns
        resources that fit. A retry with the same ``idempotency_key`` (a
        Celery task id, a request id) returns the first booking.

        Raises ``SlotUnavailableError`` when the slot is taken or not
        bookable. Needs ``appointment.book`` (``appointment.overbook`` and
        ``booking.bypass_notice`` for those options).
        """
    def cancel(
        self, principal: Principal, id: str, expected_version: int, reason_code: str
    ) -> Appointment:
        """Cancels the appointment if it is still at ``expected_version``
        (else ``ConflictError``), recording the principal and
        ``reason_code``. Needs ``appointment.cancel``."""
    def appointment(self, principal: Principal, id: str) -> Appointment:
        """One appointment; PHI redacted unless the principal may read it.
        Raises ``NotFoundError``. Needs ``appointment.read``."""
    def claim_events(
        self,
        principal: Principal,
        worker: str,
        max: int = 100,
        lease: timedelta | None = None,
    ) -> list[Event]:
        """Claims up to ``max`` due outbox events for ``worker`` for
        ``lease`` (default 60 seconds, whole seconds count); acknowledge each
        with ``ack_event`` once delivered. Needs ``outbox.drain``."""
    def ack_event(self, principal: Principal, event_id: int, worker: str) -> None:
        """Acknowledges a delivered event. Raises ``ConflictError``
        (``lease_lost``) when the lease lapsed or another worker holds it."""

def _error_class_name(code: str) -> str | None:
    """The ``medsched`` exception class name for an error code (testing aid)."""

def _raise_sample_error(code: str) -> None:
    """Raises a sample error of ``code`` through the native mapping (testing aid)."""
