"""JSON views over the engine: list slots, book, cancel. Each view converts
the request, calls the engine, converts the result; engine errors become
HTTP statuses in one place (`_api`), by exception class."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

import medsched
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from scheduling.auth import Unauthenticated, principal_of
from scheduling.engine import ENGINE

# Most specific first: the first matching class decides.
STATUS_OF: list[tuple[type[Exception], int]] = [
    (medsched.PermissionDeniedError, 403),
    (medsched.NotFoundError, 404),
    (medsched.SlotUnavailableError, 409),
    (medsched.ConflictError, 409),
    (medsched.InvalidInputError, 400),
    (medsched.StorageUnavailableError, 503),
]


class BadRequest(Exception):
    """A request this API cannot read (missing field, not JSON, bad date)."""


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def _api(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Unauthenticated:
            return _error(401, "unauthenticated", "send X-User (and X-Roles)")
        except BadRequest as e:
            return _error(400, "bad_request", str(e))
        except medsched.Error as e:
            # medsched messages never carry PHI, so they may go to the client.
            for cls, status in STATUS_OF:
                if isinstance(e, cls):
                    return _error(status, e.code, str(e))
            return _error(500, e.code, "internal error")

    return wrapped


def _instant(value: object, field: str) -> datetime:
    """An ISO 8601 instant; a naive one reaches the engine, which refuses it."""
    if not isinstance(value, str):
        raise BadRequest(f"`{field}` must be an ISO 8601 datetime string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"`{field}` is not an ISO 8601 datetime") from None


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequest(f"`{name}` is required ({kind.__name__})")
    return value


def _appointment(a: medsched.Appointment) -> dict[str, Any]:
    # Ids, status and times only: reason and notes (PHI) stay out of this API.
    return {
        "id": a.id,
        "version": a.version,
        "status": a.status,
        "type": a.type_id,
        "start": a.start.isoformat() if a.start else None,
        "end": a.end.isoformat() if a.end else None,
        "resources": a.resources,
    }


@require_GET
@_api
def slots(request: HttpRequest) -> HttpResponse:
    """`GET /slots?type=consult&from=ISO&to=ISO[&resource=id...]`"""
    q = request.GET
    type_id = q.get("type")
    if not type_id:
        raise BadRequest("`type` is required")
    found = ENGINE.slots(
        principal_of(request),
        type_id,
        _instant(q.get("from"), "from"),
        _instant(q.get("to"), "to"),
        resources=q.getlist("resource") or None,
    )
    return JsonResponse(
        [
            {"resource": s.resource, "start": s.start.isoformat(), "end": s.end.isoformat()}
            for s in found
        ],
        safe=False,
    )


@require_POST
@_api
def book(request: HttpRequest) -> HttpResponse:
    """`POST /book` with `{"type", "start", "resources"?, "patient"?,
    "reason"?}`; an `Idempotency-Key` header makes retries safe."""
    who = principal_of(request)
    body = _body(request)
    resources = body.get("resources")
    if resources is not None and not (
        isinstance(resources, list) and all(isinstance(r, str) for r in resources)
    ):
        raise BadRequest("`resources` must be a list of ids")
    booking = ENGINE.book(
        who,
        _field(body, "type", str),
        _instant(body.get("start"), "start"),
        resources=resources,
        patient=body.get("patient"),
        reason=body.get("reason"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    payload = _appointment(booking.appointment)
    payload["replayed"] = booking.replayed
    payload["warnings"] = booking.warnings
    return JsonResponse(payload, status=200 if booking.replayed else 201)


@require_POST
@_api
def cancel(request: HttpRequest) -> HttpResponse:
    """`POST /cancel` with `{"id", "version", "reason_code"?, "note"?}`: the
    code is one of the engine's closed list (an unknown one is a 400); the
    note is PHI and stays with the appointment's notes."""
    who = principal_of(request)
    body = _body(request)
    cancelled = ENGINE.cancel(
        who,
        _field(body, "id", str),
        _field(body, "version", int),
        body.get("reason_code") or "patient_request",
        note=body.get("note"),
    )
    return JsonResponse(_appointment(cancelled))
