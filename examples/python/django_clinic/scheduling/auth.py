"""Who is asking. STAND-IN: this example trusts the `X-User`, `X-Roles`
(comma-separated policy role names) and `X-Patient` request headers. A real
host derives the principal from its own authentication (Django's
`request.user`, an OIDC token, an API gateway) and must never take roles
from a client-controlled header."""

from __future__ import annotations

import medsched
from django.http import HttpRequest

from scheduling.engine import TENANT


class Unauthenticated(Exception):
    """The request names no user."""


def principal_of(request: HttpRequest) -> medsched.Principal:
    user = request.headers.get("X-User", "").strip()
    if not user:
        raise Unauthenticated
    roles = [r.strip() for r in request.headers.get("X-Roles", "").split(",") if r.strip()]
    patient = request.headers.get("X-Patient") or None
    return medsched.Principal(user, TENANT, roles=roles, patient=patient)
