"""The "clinic-month" benchmark scenario, generated in Python.

A line-by-line port of the Rust generator in ``benches/src/lib.rs``
(``Recipe::clinic`` with ``Scenario::ClinicMonth``): the same splitmix64
stream, the same draws in the same order, so it produces the same clinic as
``medsched_benches::clinic_month()``. ``docs/benchmarks.md`` gives the
recipe; the figures printed by the Rust bench (106 rules, 5 time off, 5 936
appointments, 7 596 slot entries over 1 126 distinct starts) are checked by
``slots_vs_pure_python.py``.

Run as a script with a path to write the clinic as JSON (e.g. for
``medsched`` CLI use); the benchmark generates it at run time (about 0.1 s).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

MASK = (1 << 64) - 1
SEED = 0x6D65_6473_6368_6564  # "medsched"
TYPE_ID = "consult"
BOOKED_SHARE = 0.40
UNIT = 300  # five minutes, in seconds

RULES_START = date(2027, 1, 4)
VACATION_WEEKS = [date(2027, 3, 1), date(2027, 3, 8), date(2027, 3, 15), date(2027, 3, 22)]

# The scenario and its query.
PROVIDERS = 50
BERLIN = 10
FROM_DATE = date(2027, 3, 1)
DAYS = 31
WINDOW_FROM = datetime(2027, 3, 1, tzinfo=timezone.utc)
WINDOW_TO = datetime(2027, 4, 1, tzinfo=timezone.utc)
NOW = datetime(2027, 2, 28, tzinfo=timezone.utc)

MON_FRI = 0b1_1111
MON_WED_FRI = 0b1_0101
TUE_THU = 0b0_1010


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E37_79B9_7F4A_7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return (self.next_u64() * n) >> 64

    def between(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        return lo + self.below(hi - lo + 1)


def round_half_away(x: float) -> int:
    """Rust's ``f64::round`` for x >= 0 (Python's ``round`` is half-even)."""
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


class Rule:
    def __init__(self, first: date, start: time, end: time, days: int, interval: int) -> None:
        self.first, self.start, self.end, self.days, self.interval = first, start, end, days, interval

    def rrule(self) -> str:
        names = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        s = "FREQ=WEEKLY;BYDAY=" + ",".join(n for i, n in enumerate(names) if self.days & (1 << i))
        if self.interval > 1:
            s += f";INTERVAL={self.interval}"
        return s

    def on(self, d: date) -> bool:
        if d < self.first:
            return False
        origin = self.first - timedelta(days=self.first.weekday())
        weeks = (d - origin).days // 7
        return weeks % max(self.interval, 1) == 0 and bool(self.days & (1 << d.weekday()))


def rules_of(i: int) -> list[Rule]:
    m = i % 20
    if m <= 13:
        return [
            Rule(RULES_START, time(8), time(12), MON_FRI, 1),
            Rule(RULES_START, time(13), time(17), MON_FRI, 1),
        ]
    if m <= 16:
        return [
            Rule(RULES_START, time(8), time(12), MON_WED_FRI, 1),
            Rule(RULES_START, time(13), time(17), MON_WED_FRI, 1),
            Rule(RULES_START + timedelta(days=1), time(12), time(20), TUE_THU, 1),
        ]
    phase = i // 20 % 2
    first = RULES_START + timedelta(weeks=phase)
    return [
        Rule(first, time(8), time(12), MON_FRI, 2),
        Rule(first, time(13), time(17), MON_FRI, 2),
    ]


def instant(zone: ZoneInfo, wall: datetime) -> int | None:
    """Epoch seconds of a local wall time, earliest reading; None in a gap
    (chrono's ``earliest()``)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    if first > second:  # a gap: the wall time does not exist
        return None
    return int(first.timestamp())


def fill_block(rng: SplitMix64, units: int) -> list[tuple[int, int]]:
    target = round_half_away(units * BOOKED_SHARE)
    lengths: list[int] = []
    booked = 0
    while booked < target:
        length = min(rng.between(3, 12), target - booked)
        if length >= 3:
            lengths.append(length)
            booked += length
            continue
        if lengths:
            if lengths[-1] + length <= 12:
                lengths[-1] += length
            else:
                lengths[-1] -= 3 - length
                lengths.append(3)
        booked += length
        if not lengths:
            booked = 0
            break
    n = len(lengths)
    free = units - booked - max(n - 1, 0)
    while free < 0:
        if not lengths:
            return []
        free += lengths.pop() + 1
    cuts = sorted(rng.between(0, free) for _ in range(len(lengths)))
    out = []
    t = prev_cut = 0
    for k, (length, cut) in enumerate(zip(lengths, cuts)):
        t += cut - prev_cut + (1 if k > 0 else 0)
        prev_cut = cut
        out.append((t, length))
        t += length
    return out


def utc_text(secs: int) -> str:
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clinic_month() -> dict[str, Any]:
    """The clinic-month clinic as a JSON-compatible dict (the engine's
    catalog format)."""
    clinic: dict[str, Any] = {
        "resources": [],
        "working_hours": [],
        "time_off": [],
        "appointment_types": [
            {
                "id": TYPE_ID,
                "name": "Consultation",
                "duration_min": 30,
                "buffer_before_min": 0,
                "buffer_after_min": 5,
                "step_min": 15,
                "align_offset_min": 0,
                "min_notice_min": 0,
                "requirements": [{"count": 1, "tag": "provider"}],
            }
        ],
        "appointments": [],
    }
    width = max(len(str(PROVIDERS - 1)), 3)
    win_from, win_to = int(WINDOW_FROM.timestamp()), int(WINDOW_TO.timestamp())
    for i in range(PROVIDERS):
        rng = SplitMix64(SEED ^ (((i + 1) * 0xD6E8_FEB8_6659_FD93) & MASK))
        rid = f"p{i:0{width}d}"
        zone_name = "Europe/Berlin" if i >= PROVIDERS - BERLIN else "America/New_York"
        zone = ZoneInfo(zone_name)
        clinic["resources"].append(
            {
                "id": rid,
                "name": f"Provider {i}",
                "kind": "provider",
                "zone": zone_name,
                "capacity": 1,
                "tags": ["provider"],
            }
        )
        rules = rules_of(i)
        for r in rules:
            clinic["working_hours"].append(
                {
                    "resource": rid,
                    "dtstart": datetime.combine(r.first, r.start).isoformat(),
                    "end": r.end.isoformat(),
                    "rrule": r.rrule(),
                }
            )
        vacation = None
        if i % 10 == 7:
            monday = VACATION_WEEKS[rng.below(len(VACATION_WEEKS))]
            vs = instant(zone, datetime.combine(monday, time()))
            ve = instant(zone, datetime.combine(monday + timedelta(weeks=1), time()))
            if vs is not None and ve is not None:
                clinic["time_off"].append(
                    {
                        "id": f"vacation-{rid}",
                        "resource": rid,
                        "start": utc_text(vs),
                        "end": utc_text(ve),
                        "kind": "vacation",
                    }
                )
                vacation = (vs, ve)
        blocks = []
        d = FROM_DATE - timedelta(days=1)
        last = FROM_DATE + timedelta(days=DAYS)
        while d <= last:
            for r in rules:
                if not r.on(d):
                    continue
                end_date = d + timedelta(days=1) if r.end <= r.start else d
                s = instant(zone, datetime.combine(d, r.start))
                e = instant(zone, datetime.combine(end_date, r.end))
                if s is None or e is None:
                    continue
                s, e = max(s, win_from), min(e, win_to)
                if e <= s or (vacation is not None and s < vacation[1] and vacation[0] < e):
                    continue
                blocks.append((s, e))
            d += timedelta(days=1)
        blocks.sort()
        seq = 0
        patients = PROVIDERS * 200
        for s, e in blocks:
            for start, length in fill_block(rng, (e - s) // UNIT):
                seq += 1
                st = s + start * UNIT
                clinic["appointments"].append(
                    {
                        "id": f"a-{rid}-{seq:05d}",
                        "type": TYPE_ID,
                        "patient": f"pt{rng.below(patients):07d}",
                        "resources": [rid],
                        "start": utc_text(st),
                        "end": utc_text(st + length * UNIT),
                        "status": "booked",
                        "buffer_before_min": 0,
                        "buffer_after_min": 5,
                    }
                )
    return clinic


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: clinic_month.py OUT.json")
    out = Path(sys.argv[1])
    data = clinic_month()
    out.write_text(json.dumps(data) + "\n")
    print(
        f"wrote {out}: {len(data['resources'])} resources, "
        f"{len(data['working_hours'])} rules, {len(data['time_off'])} time off, "
        f"{len(data['appointments'])} appointments",
        file=sys.stderr,
    )
