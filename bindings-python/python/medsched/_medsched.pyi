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
    "Guardianship",
    "Elevation",
    "Principal",
    "Slot",
    "Appointment",
    "Event",
    "Booking",
    "Reason",
    "Explanation",
    "OccurrenceReport",
    "SeriesBooking",
    "AuditRecord",
    "Engine",
    "ERROR_CODES",
    "_error_class_name",
    "_raise_sample_error",
]

ERROR_CODES: tuple[str, ...]
"""Every error code the engine can report (``Error.code`` values)."""

@final
class Guardianship:
    """A guardian's authority over a ward (scope ``guardian``), valid in
    ``[valid_from, until)``; ``None`` leaves that side open. Instants are
    aware datetimes; a naive one raises ``InvalidInputError``."""

    def __new__(
        cls,
        patient: str,
        valid_from: datetime | None = None,
        until: datetime | None = None,
    ) -> Guardianship: ...
    @property
    def patient(self) -> str:
        """The ward's patient id."""
    @property
    def valid_from(self) -> datetime | None:
        """Valid from (aware, UTC)."""
    @property
    def until(self) -> datetime | None:
        """Valid until, exclusive (aware, UTC)."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Elevation:
    """A break-glass elevation: emergency access to one patient until
    ``expires_at``. ``Engine.break_glass`` grants one (audited, flagged for
    review); add it with ``Principal.with_elevation``. The constructor only
    rebuilds an elevation the host stored (e.g. in its session)."""

    def __new__(
        cls, patient: str, reason: str, granted_at: datetime, expires_at: datetime
    ) -> Elevation: ...
    @property
    def patient(self) -> str:
        """The patient id it opens."""
    @property
    def reason(self) -> str:
        """The stated reason (never in ``repr``)."""
    @property
    def granted_at(self) -> datetime:
        """When it was granted (aware, UTC)."""
    @property
    def expires_at(self) -> datetime:
        """When it stops having any effect (aware, UTC)."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Principal:
    """Who is asking: a user in a tenant, with role names from the policy.
    Immutable; ``with_elevation`` returns a new principal.

    ``patient`` is the user's own patient id (scope ``own``), ``resources``
    the user's provider resources (scope ``assigned``), ``departments`` the
    user's departments (scope ``department``), ``guardianships`` the user's
    wards (scope ``guardian``), ``elevations`` break-glass grants.
    """

    def __new__(
        cls,
        user: str,
        tenant: str,
        roles: Sequence[str] = ...,
        patient: str | None = None,
        resources: Sequence[str] = ...,
        departments: Sequence[str] = ...,
        guardianships: Sequence[Guardianship] = ...,
        elevations: Sequence[Elevation] = ...,
    ) -> Principal: ...
    def with_elevation(self, elevation: Elevation) -> Principal:
        """A copy of this principal that also carries ``elevation``."""
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
    @property
    def guardianships(self) -> list[Guardianship]:
        """The user's guardianships."""
    @property
    def elevations(self) -> list[Elevation]:
        """Break-glass elevations the user carries."""
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
class Booking:
    """The outcome of ``Engine.book`` or ``Engine.hold``."""

    @property
    def appointment(self) -> Appointment:
        """The appointment as this principal may see it."""
    @property
    def replayed(self) -> bool:
        """``True`` when this is the first result of an earlier request with
        the same ``idempotency_key`` (nothing new was booked)."""
    @property
    def warnings(self) -> list[str]:
        """Reason codes of findings that did not block (``patient_overlap``
        under a ``warn`` setting)."""

@final
class Reason:
    """Why a start is not bookable. Branch on ``code``, show
    ``description``."""

    @property
    def code(self) -> str:
        """Stable snake_case code (``overlap``, ``outside_hours``,
        ``time_off``, ``notice`` ...)."""
    @property
    def description(self) -> str:
        """A one-line human account; names records by id, never PHI."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Explanation:
    """Whether one resource can take one start, and if not, why."""

    @property
    def resource(self) -> str:
        """Resource id."""
    @property
    def start(self) -> datetime:
        """Start instant (aware, UTC)."""
    @property
    def end(self) -> datetime:
        """End instant (aware, UTC)."""
    @property
    def bookable(self) -> bool:
        """Whether a booking on this resource would succeed."""
    @property
    def reasons(self) -> list[Reason]:
        """Blocking reasons; empty when bookable."""
    @property
    def warnings(self) -> list[Reason]:
        """Findings that do not block."""

@final
class OccurrenceReport:
    """The conflict check of one start (one occurrence of a series)."""

    @property
    def start(self) -> datetime:
        """Start instant (aware, UTC)."""
    @property
    def end(self) -> datetime:
        """End instant (aware, UTC)."""
    @property
    def bookable(self) -> bool:
        """Whether it can be booked as proposed."""
    @property
    def assigned(self) -> list[str]:
        """The resources a booking would take, when bookable."""
    @property
    def conflicts(self) -> list[tuple[str | None, list[str]]]:
        """Blocking reason codes per resource; the resource is ``None`` for
        a conflict of the proposal as a whole."""
    @property
    def warnings(self) -> list[str]:
        """Reason codes of findings that do not block."""
    @property
    def patient_conflicts(self) -> list[str]:
        """Reason codes of patient overlaps that block."""

@final
class SeriesBooking:
    """The outcome of ``Engine.book_series``."""

    @property
    def booked(self) -> list[Appointment]:
        """The booked occurrences (empty when all-or-nothing failed)."""
    @property
    def occurrences(self) -> list[OccurrenceReport]:
        """Every occurrence, ascending, with its conflicts."""
    @property
    def truncated(self) -> bool:
        """Whether the occurrence limit cut the series."""

@final
class AuditRecord:
    """One record of the tenant's tamper-evident audit trail."""

    @property
    def seq(self) -> int:
        """Position in the chain, from 1, without gaps."""
    @property
    def at(self) -> datetime:
        """When (aware, UTC)."""
    @property
    def actor(self) -> str:
        """User id."""
    @property
    def action(self) -> str:
        """Policy action name (``appointment.book`` ...) or
        ``break_glass.use``."""
    @property
    def record(self) -> str:
        """The record id acted on."""
    @property
    def decision(self) -> str:
        """``allow`` or ``deny``."""
    @property
    def reason_code(self) -> str:
        """The deciding rule (``role:action@scope``) or denial code."""
    @property
    def policy_version(self) -> str:
        """The policy version that decided."""
    @property
    def break_glass(self) -> bool:
        """Whether break-glass was used (flagged for review)."""

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
    @staticmethod
    def postgres(
        policy_toml: str,
        dsn: str,
        *,
        keyring: str | None = None,
        max_connections: int = 8,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> Engine:
        """An engine over the reference PostgreSQL store at ``dsn`` (a
        libpq-style connection string, e.g.
        ``"host=127.0.0.1 port=5432 user=app dbname=clinic"``).

        ``keyring`` turns on PHI encryption at rest: ``"id1:base64key,..."``
        with the first key active (the ``MEDSCHED_PHI_KEYS`` format).
        ``migrate`` applies the adapter's schema migrations first.

        Raises ``StorageUnavailableError`` when the database cannot be
        reached, ``InvalidInputError`` for a bad connection string or key
        ring, or a database schema newer than this package knows.
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
    ) -> Booking:
        """Books one appointment; without ``resources`` the engine assigns
        resources that fit. A retry with the same ``idempotency_key`` (a
        Celery task id, a request id) returns the first booking, with
        ``replayed`` set.

        Raises ``SlotUnavailableError`` when the slot is taken or not
        bookable. Needs ``appointment.book`` (``appointment.overbook`` and
        ``booking.bypass_notice`` for those options).
        """
    def hold(
        self,
        principal: Principal,
        type_id: str,
        start: datetime,
        *,
        ttl: timedelta | None = None,
        resources: Sequence[str] | None = None,
        patient: str | None = None,
        reason: str | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
        overbook: bool = False,
        bypass_notice: bool = False,
    ) -> Booking:
        """Holds a slot like ``book`` does, with status ``pending``, until
        ``ttl`` (whole seconds count; default: the engine's hold time)
        passes; ``confirm`` it before ``appointment.hold_expires_at``.
        Raises and needs what ``book`` does."""
    def confirm(self, principal: Principal, id: str, expected_version: int) -> Appointment:
        """Confirms a hold at ``expected_version``. Raises ``ConflictError``
        (``hold_expired``, ``version_conflict``). Needs
        ``appointment.book``."""
    def reschedule(
        self,
        principal: Principal,
        id: str,
        expected_version: int,
        new_start: datetime,
        *,
        resources: Sequence[str] | None = None,
    ) -> Appointment:
        """Moves the appointment at ``expected_version`` to ``new_start``
        (on ``resources`` if given, else on its own). Raises
        ``SlotUnavailableError``, ``ConflictError``. Needs
        ``appointment.reschedule``."""
    def transition(
        self, principal: Principal, id: str, expected_version: int, status: str
    ) -> Appointment:
        """Changes the status to a FHIR R4 code (``checked-in``,
        ``arrived``, ``fulfilled``, ``noshow``, ``entered-in-error`` ...).
        An unknown code raises ``InvalidInputError``; a change the FHIR
        table forbids raises ``ConflictError`` (``invalid_transition``).
        Needs ``appointment.status`` (``appointment.cancel`` for
        ``cancelled``)."""
    def book_series(
        self,
        principal: Principal,
        type_id: str,
        zone: str,
        dtstart: datetime,
        rrule: str,
        *,
        resources: Sequence[str] | None = None,
        patient: str | None = None,
        policy: str = "all_or_nothing",
        idempotency_key: str | None = None,
    ) -> SeriesBooking:
        """Books every occurrence of an RFC 5545 ``rrule`` (e.g.
        ``"FREQ=WEEKLY;COUNT=4"``).

        ``dtstart`` is the one NAIVE datetime in this API, on purpose: it is
        wall time in the IANA ``zone`` (e.g. ``datetime(2027, 3, 15, 9, 0)``
        with ``zone="America/New_York"``), so a weekly 09:00 stays 09:00
        local across DST changes. An aware ``dtstart`` raises
        ``InvalidInputError``. Results are aware UTC instants as everywhere.

        ``policy`` is ``"all_or_nothing"`` (raise ``SlotUnavailableError``
        unless every occurrence is free) or ``"book_free"`` (book the free
        ones; see ``occurrences`` for the rest). Needs ``appointment.book``.
        """
    def explain(
        self,
        principal: Principal,
        type_id: str,
        resource: str,
        start: datetime,
        *,
        patient: str | None = None,
    ) -> Explanation:
        """Why ``resource`` can or cannot take an appointment of
        ``type_id`` at ``start`` (with ``patient``, their overlaps too).
        Needs ``slots.read``."""
    def check(
        self,
        principal: Principal,
        type_id: str,
        start: datetime,
        *,
        resources: Sequence[str] | None = None,
        patient: str | None = None,
    ) -> OccurrenceReport:
        """The conflict check of a proposed appointment, without booking.
        Needs ``slots.read``."""
    def add_waitlist(
        self,
        principal: Principal,
        id: str,
        patient: str,
        type_id: str,
        start: datetime,
        end: datetime,
        *,
        resources: Sequence[str] | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Puts ``patient`` on the waitlist for ``type_id`` in ``[start,
        end)``; a freed slot that fits emits a ``waitlist_offer`` event.
        ``created_at`` (default: the engine clock) orders the offers. Raises
        ``ConflictError`` (``duplicate_id``). Needs ``waitlist.manage``."""
    def break_glass(
        self, principal: Principal, patient: str, reason: str, minutes: int
    ) -> Elevation:
        """Emergency access to ``patient`` for ``minutes`` (at most the
        policy's maximum) with a mandatory ``reason`` (no PHI). Always
        audited and flagged. Raises ``PermissionDeniedError`` when no role
        of the principal may break glass, ``InvalidInputError`` for an empty
        reason or bad duration. Use the result with
        ``principal.with_elevation``."""
    def audit_trail(
        self, principal: Principal, from_seq: int = 1, max: int = 1000
    ) -> list[AuditRecord]:
        """Up to ``max`` audit records from sequence number ``from_seq``.
        Needs ``audit.read``."""
    def verify_audit(self, principal: Principal) -> int:
        """Verifies the tenant's whole audit chain and returns its length.
        Raises ``IntegrityError`` for an edited, deleted or reordered
        record. Needs ``audit.read``."""
    def cancel(
        self,
        principal: Principal,
        id: str,
        expected_version: int,
        reason_code: str,
        note: str | None = None,
    ) -> Appointment:
        """Cancels the appointment if it is still at ``expected_version``
        (else ``ConflictError``), recording the principal and
        ``reason_code``, one of ``patient_request``,
        ``provider_unavailable``, ``clinic_closed``, ``no_show_policy``,
        ``duplicate``, ``entered_in_error``, ``status_change``, ``other``
        (any other code raises ``InvalidInputError``). ``note`` is PHI: it
        is added to the appointment's notes and never reaches an event or
        the audit trail. Needs ``appointment.cancel``."""
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
    def _panic_for_test(self) -> None:
        """Panics inside the engine call path; raises ``InternalError``
        (``internal_error``). Testing aid, not part of the API."""

def _error_class_name(code: str) -> str | None:
    """The ``medsched`` exception class name for an error code (testing aid)."""

def _raise_sample_error(code: str) -> None:
    """Raises a sample error of ``code`` through the native mapping (testing aid)."""
