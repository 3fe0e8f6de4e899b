"""The GIL is released while the engine works: 8 Python threads booking the
same slots against one engine get exactly one booking per slot; the losers
get SlotUnavailableError."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import medsched

BERLIN = ZoneInfo("Europe/Berlin")
THREADS = 8


def test_eight_threads_never_double_book(
    engine: medsched.Engine, admin: medsched.Principal
) -> None:
    window = (datetime(2027, 3, 16, tzinfo=BERLIN), datetime(2027, 3, 17, tzinfo=BERLIN))
    starts = sorted({s.start for s in engine.slots(admin, "video", *window)})
    assert len(starts) >= 10
    barrier = threading.Barrier(THREADS)
    won: list[tuple[int, datetime, str]] = []
    lost: list[tuple[int, datetime, BaseException]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        # Each thread walks the slots from a different point, to contend everywhere.
        order = starts[n:] + starts[:n]
        for start in order:
            try:
                a = engine.book(admin, "video", start, patient=f"p-thread-{n}").appointment
            except BaseException as e:  # collected and checked below
                with lock:
                    lost.append((n, start, e))
            else:
                with lock:
                    won.append((n, start, a.id))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    per_start = {s: [w for w in won if w[1] == s] for s in starts}
    assert all(len(w) == 1 for w in per_start.values()), per_start
    assert len(won) == len(starts)
    assert len(won) + len(lost) == THREADS * len(starts)
    wrong = [(n, s, repr(e)) for n, s, e in lost if not isinstance(e, medsched.SlotUnavailableError)]
    assert not wrong
    assert engine.slots(admin, "video", *window) == []
    # Every booking is readable and distinct.
    ids = {engine.appointment(admin, w[2]).id for w in won}
    assert len(ids) == len(won)

