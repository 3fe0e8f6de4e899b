"""The exceptions of medsched.

Every error the engine reports is an instance of :class:`Error` with a stable
snake_case ``code`` (listed in ``docs/error-codes.md``); branch on the class or
on ``code``, never on the message. Each family also subclasses the builtin a
Python caller would naturally catch (``ValueError``, ``LookupError``,
``PermissionError``, ``ConnectionError``). Messages never carry patient data.

The native module picks the class by code (one mapping, in Rust); these are
plain Python classes so that they pickle (Celery sends exceptions between
processes).
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "SlotUnavailableError",
    "ConflictError",
    "StorageUnavailableError",
    "IntegrityError",
    "SchemaTooNewError",
    "InternalError",
]


class Error(Exception):
    """Base class of every medsched error; ``code`` is the stable error code."""

    code: str

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[Error], tuple[str, str]]:
        return (type(self), (str(self), self.code))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, code={self.code!r})"


class InvalidInputError(Error, ValueError):
    """Input the engine refuses: a bad field, zone, rule, window, document or
    policy, or a naive datetime (codes ``invalid_input``, ``unknown_zone``,
    ``rrule_invalid``, ``end_before_start``, ``window_too_large``,
    ``malformed_document``, ``policy_invalid``, ``recurrence_too_large``,
    ``output_too_large``)."""


class NotFoundError(Error, LookupError):
    """A record that does not exist (``not_found``)."""


class PermissionDeniedError(Error, PermissionError):
    """The principal may not do this (``permission_denied``); the denial is
    audited."""


class SlotUnavailableError(Error):
    """The slot is taken or outside what the type allows (``slot_unavailable``)."""


class ConflictError(Error):
    """The request conflicts with the current state: a stale version, a reused
    idempotency key, a disallowed status change, a lapsed hold, a duplicate id
    or a lost lease (``version_conflict``, ``idempotency_mismatch``,
    ``invalid_transition``, ``hold_expired``, ``duplicate_id``, ``lease_lost``)."""


class StorageUnavailableError(Error, ConnectionError):
    """The store cannot be reached; retrying may succeed (``storage_unavailable``)."""


class IntegrityError(Error):
    """A stored value failed its integrity check (``integrity_error``)."""


class SchemaTooNewError(Error, RuntimeError):
    """The database's schema is newer than this build of medsched knows:
    upgrade the application, never downgrade the schema (``schema_too_new``)."""


class InternalError(Error, RuntimeError):
    """A defect in medsched: a broken invariant or a caught panic, never the
    answer to bad input; the message carries no input (``internal_error``)."""
