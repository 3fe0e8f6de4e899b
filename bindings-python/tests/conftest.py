"""Shared fixtures: the golden clinic and policy that the Rust tests use,
an engine on a settable clock, and principals of each role."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import medsched

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CLINIC_PATH = FIXTURES / "demo-clinic.json"
POLICY_PATH = FIXTURES / "policy-clinic.toml"
TENANT = "clinic-a"
# Before every slot in the fixture, so notice and horizon never interfere.
START_OF_TESTS = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)


class Clock:
    """A settable clock to pass as `Engine.in_memory(clock=...)`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def policy_toml() -> str:
    return POLICY_PATH.read_text()


@pytest.fixture
def clinic_dict() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CLINIC_PATH.read_text())
    return data


@pytest.fixture
def admin() -> medsched.Principal:
    return medsched.Principal("u-admin", TENANT, roles=["clinic_admin"])


@pytest.fixture
def receptionist() -> medsched.Principal:
    return medsched.Principal("u-desk", TENANT, roles=["receptionist"])


@pytest.fixture
def clock() -> Clock:
    return Clock(START_OF_TESTS)


@pytest.fixture
def make_engine(
    policy_toml: str, admin: medsched.Principal, clock: Clock
) -> Callable[[], medsched.Engine]:
    def make() -> medsched.Engine:
        engine = medsched.Engine.in_memory(policy_toml, clock=clock)
        engine.put_catalog(admin, CLINIC_PATH)
        return engine

    return make


@pytest.fixture
def engine(make_engine: Callable[[], medsched.Engine]) -> medsched.Engine:
    return make_engine()
