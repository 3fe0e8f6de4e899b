"""`Engine.postgres` against a throwaway PostgreSQL 15 that this module
starts on 127.0.0.1 (initdb into a temporary folder, as the `postgres` OS
user when run as root) and removes afterwards. Tests the binding's
conversion and errors over the real store, not scheduling rules."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

import medsched

from conftest import CLINIC_PATH, POLICY_PATH

PG_BIN = Path(os.environ.get("MEDSCHED_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 server binaries not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="medsched-py-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
    port = _free_port()

    def run(args: list[str]) -> None:
        subprocess.run(_as_postgres(args), check=True, capture_output=True)

    try:
        run([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
        run([
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off", "start",
        ])
        run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "clinic"])
        yield f"host=127.0.0.1 port={port} user=postgres dbname=clinic"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _keyring() -> str:
    return "k1:" + base64.b64encode(bytes(range(32))).decode()


def _admin(tenant: str = "pg-tenant") -> medsched.Principal:
    return medsched.Principal("admin-1", tenant, ["clinic_admin"])


def _desk(tenant: str = "pg-tenant") -> medsched.Principal:
    return medsched.Principal("desk-1", tenant, ["receptionist"])


def test_postgres_engine_books_once_and_redacts(dsn: str) -> None:
    engine = medsched.Engine.postgres(POLICY_PATH.read_text(), dsn, keyring=_keyring())
    engine.put_catalog(_admin(), CLINIC_PATH)
    day = (datetime(2027, 3, 10, tzinfo=timezone.utc), datetime(2027, 3, 11, tzinfo=timezone.utc))
    slots = engine.slots(_admin(), "consult", *day, now=datetime(2027, 3, 1, tzinfo=timezone.utc))
    assert slots
    first = slots[0]
    booked = engine.book(_desk(), "consult", first.start, patient="p-900", reason="SENTINEL reason")
    assert booked.appointment.reason is None  # the front desk never sees PHI
    with pytest.raises(medsched.SlotUnavailableError) as info:
        engine.book(_desk(), "consult", first.start, resources=list(booked.appointment.resources), patient="p-901")
    assert info.value.code == "slot_unavailable"
    # A second engine (another app server) on the same database sees the booking.
    other = medsched.Engine.postgres(POLICY_PATH.read_text(), dsn, keyring=_keyring(), migrate=False)
    again = other.appointment(_desk(), booked.appointment.id)
    assert again.version == booked.appointment.version


def test_eight_threads_on_postgres_give_one_winner(dsn: str) -> None:
    engine = medsched.Engine.postgres(POLICY_PATH.read_text(), dsn, keyring=_keyring())
    engine.put_catalog(_admin("pg-race"), CLINIC_PATH)
    start = engine.slots(
        _admin("pg-race"), "consult", datetime(2027, 3, 11, tzinfo=timezone.utc), datetime(2027, 3, 12, tzinfo=timezone.utc),
        now=datetime(2027, 3, 1, tzinfo=timezone.utc),
    )[0]
    # The consult type needs a provider and a room: race for one full assignment.
    pair = list(engine.check(_admin("pg-race"), "consult", start.start).assigned)
    assert len(pair) == 2
    wins: list[str] = []
    losses: list[str] = []

    def book(i: int) -> None:
        try:
            b = engine.book(_desk("pg-race"), "consult", start.start, resources=pair, patient=f"p-{i}")
            wins.append(b.appointment.id)
        except medsched.SlotUnavailableError as e:
            losses.append(e.code)

    threads = [threading.Thread(target=book, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert losses == ["slot_unavailable"] * 7


def test_unreachable_database_is_storage_unavailable() -> None:
    with pytest.raises(medsched.StorageUnavailableError) as info:
        medsched.Engine.postgres(POLICY_PATH.read_text(), f"host=127.0.0.1 port={_free_port()} user=x dbname=y")
    assert isinstance(info.value, ConnectionError)


def test_bad_keyring_is_invalid_input(dsn: str) -> None:
    with pytest.raises(medsched.InvalidInputError):
        medsched.Engine.postgres(POLICY_PATH.read_text(), dsn, keyring="not a key ring")
