"""Clinic-month slot query: the ``medsched`` binding against pure Python.

Issue 6, point 8. In one process, on the same clinic (``clinic_month.py``, a
port of the Rust scenario generator), this times

(a) ``Engine.slots`` through the binding, over an in-memory engine holding
    the clinic: the result is the ``list[Slot]`` of Python objects; and
(b) ``pure_python_slots`` below: the same semantics written by hand with
    python-dateutil (RRULE expansion) and zoneinfo, returning a list of
    ``PySlot(resource, start, end)`` named tuples.

Both start from data already loaded: the catalog is put into the engine, and
the pure-Python side parses the same dict into datetimes, parsed rrules and
per-resource lists, before timing. Each timed call answers the whole query
(every provider, 2027-03-01T00:00Z to 2027-04-01T00:00Z, ``now`` =
2027-02-28T00:00Z).

For information it also times the binding call followed by reading every
slot's ``resource``, ``start`` and ``end`` once (``Slot`` keeps the instants
and builds a ``datetime`` on each attribute read); that figure is printed
but not gated.

Before timing, the script checks that both return the same set of
(resource, start, end) and that the engine returns the counts the Rust bench
reports for this scenario. It exits non-zero if the results differ or the
ratio of the medians is below the target (50).

    .venv/bin/python benches/python/slots_vs_pure_python.py [--reps N]

Needs ``medsched`` (``scripts/test-python`` installs it) and
``python-dateutil==2.9.0.post0`` in the venv.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time as _time
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

import medsched

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clinic_month  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
POLICY_PATH = ROOT / "fixtures" / "policy-clinic.toml"
TENANT = "clinic-a"
TARGET_RATIO = 50.0
UTC = timezone.utc

# What the Rust bench prints for clinic_month (docs/benchmarks.md).
EXPECTED_ENTRIES = 7596
EXPECTED_DISTINCT_STARTS = 1126


# --------------------------------------------------------------------------
# Pure Python: the same semantics, written by hand.
# --------------------------------------------------------------------------

HOLDS_TIME = {"pending", "booked", "arrived", "fulfilled", "noshow", "checked-in"}


class PySlot(NamedTuple):
    resource: str
    start: datetime
    end: datetime


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class Catalog:
    """The clinic dict, parsed once (what a Django app would hold as model
    instances): resources, parsed rules, time off and appointments per
    resource, appointment types."""

    def __init__(self, clinic: dict[str, Any]) -> None:
        if clinic.get("overrides"):
            raise NotImplementedError("date overrides are not implemented here")
        self.resources = sorted(clinic["resources"], key=lambda r: r["id"])
        self.zones = {r["id"]: ZoneInfo(r["zone"]) for r in self.resources}
        self.types = {t["id"]: t for t in clinic["appointment_types"]}
        self.rules: dict[str, list[tuple[Any, ZoneInfo | None, time]]] = {}
        for wh in clinic["working_hours"]:
            if wh.get("rdates") or wh.get("exdates"):
                raise NotImplementedError("rdates/exdates are not implemented here")
            if wh.get("nonexistent", "shift_forward") != "shift_forward":
                raise NotImplementedError("only nonexistent = shift_forward")
            dtstart = datetime.fromisoformat(wh["dtstart"])
            if time.fromisoformat(wh["end"]) == dtstart.time():
                raise ValueError("working-hours block ends at or before it starts")
            rule = rrulestr(wh["rrule"], dtstart=dtstart)
            zone = ZoneInfo(wh["zone"]) if wh.get("zone") else None
            self.rules.setdefault(wh["resource"], []).append(
                (rule, zone, time.fromisoformat(wh["end"]))
            )
        self.time_off: dict[str | None, list[tuple[datetime, datetime]]] = {}
        for off in clinic.get("time_off", []):
            self.time_off.setdefault(off.get("resource"), []).append(
                (parse_instant(off["start"]), parse_instant(off["end"]))
            )
        self.appointments: dict[str, list[dict[str, Any]]] = {}
        for a in clinic.get("appointments", []):
            if not a.get("start") or not a.get("end"):
                continue
            row = {
                "start": parse_instant(a["start"]),
                "end": parse_instant(a["end"]),
                "status": a.get("status", "booked"),
                "buffer_before": timedelta(minutes=a.get("buffer_before_min", 0)),
                "buffer_after": timedelta(minutes=a.get("buffer_after_min", 0)),
            }
            for rid in a["resources"]:
                self.appointments.setdefault(rid, []).append(row)


def to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as an instant; a time in a spring-forward gap is read
    with the offset before the gap (02:30 becomes 03:30 summer time), a time
    in a fold takes its first occurrence (fold=0)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def wall_instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant whose local wall time is ``wall``: none in a gap, two in
    a fold."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first < second:  # a fold: both readings exist
        return [first, second]
    return []  # a gap


def subtract(
    intervals: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """``intervals`` (sorted, disjoint) minus ``holes`` (any order)."""
    result = intervals
    for hs, he in holes:
        pieces = []
        for s, e in result:
            if he <= s or e <= hs:
                pieces.append((s, e))
                continue
            if s < hs:
                pieces.append((s, hs))
            if he < e:
                pieces.append((he, e))
        result = pieces
    return result


def merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def working_blocks(
    catalog: Catalog, rid: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Open working-hour blocks of a resource overlapping [start, end)."""
    blocks = []
    for rule, rule_zone, end_time in catalog.rules.get(rid, []):
        zone = rule_zone or catalog.zones[rid]
        # Occurrences are local wall times; look a day further back for
        # blocks that start the evening before.
        after = start.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
        before = end.astimezone(zone).replace(tzinfo=None)
        for occ in rule.between(after, before, inc=True):
            end_day = occ.date() if end_time > occ.time() else occ.date() + timedelta(days=1)
            s = to_utc(occ, zone)
            e = to_utc(datetime.combine(end_day, end_time), zone)
            if s < end and start < e and s < e:
                blocks.append((s, e))
    return merge(blocks)


def grid_starts(
    zone: ZoneInfo, s_min: datetime, s_max: datetime, step: timedelta, align: timedelta
):
    """Instants in [s_min, s_max] whose local time of day is on the grid
    (``align`` + k * ``step`` after local midnight)."""
    local = s_min.astimezone(zone)
    day = local.date()
    midnight = datetime.combine(day, time())
    since = local.replace(tzinfo=None) - midnight - align
    k = max(0, -(-since // step))  # ceiling division
    wall = midnight + align + k * step
    while True:
        if wall.date() != day:  # next local day: the grid restarts at midnight
            day = wall.date()
            wall = datetime.combine(day, time()) + align
        instants = wall_instants(wall, zone)
        for s in instants:
            if s > s_max:
                return
            if s >= s_min:
                yield s
        wall += step


def pure_python_slots(
    catalog: Catalog, type_id: str, start: datetime, end: datetime, now: datetime
) -> list[PySlot]:
    ty = catalog.types[type_id]
    duration = timedelta(minutes=ty["duration_min"])
    buffer_before = timedelta(minutes=ty.get("buffer_before_min", 0))
    buffer_after = timedelta(minutes=ty.get("buffer_after_min", 0))
    step = timedelta(minutes=ty["step_min"])
    align = timedelta(minutes=ty.get("align_offset_min", 0))

    lo = max(start, now + timedelta(minutes=ty.get("min_notice_min", 0)))
    hi = end
    if ty.get("horizon_days") is not None:
        hi = min(hi, now + timedelta(days=ty["horizon_days"]))
    if lo >= hi:
        return []

    # Candidate resources: members of any requirement group.
    wanted = set()
    for req in ty["requirements"]:
        wanted.update(req.get("resources", []))
        if req.get("tag"):
            wanted.update(r["id"] for r in catalog.resources if req["tag"] in r["tags"])
    if any(req.get("count", 1) != 1 for req in ty["requirements"]) or len(ty["requirements"]) != 1:
        raise NotImplementedError("only one group of one resource")

    # Time that the candidate [s - buffer_before, s + duration + buffer_after)
    # may touch.
    reach_from, reach_to = lo - buffer_before, hi + duration + buffer_after
    slots = []
    for res in catalog.resources:
        rid = res["id"]
        if rid not in wanted:
            continue
        zone = catalog.zones[rid]
        open_time = working_blocks(catalog, rid, reach_from, reach_to)
        time_off = catalog.time_off.get(rid, []) + catalog.time_off.get(None, [])
        open_time = subtract(open_time, time_off)
        busy = [
            (a["start"] - a["buffer_before"], a["end"] + a["buffer_after"])
            for a in catalog.appointments.get(rid, [])
            if a["status"] in HOLDS_TIME
            and a["start"] - a["buffer_before"] < reach_to
            and reach_from < a["end"] + a["buffer_after"]
        ]
        for block_start, block_end in open_time:
            s_min = max(block_start + buffer_before, lo)
            s_max = min(block_end - duration - buffer_after, hi - timedelta(microseconds=1))
            if s_min > s_max:
                continue
            block_busy = [(bs, be) for bs, be in busy if bs < block_end and block_start < be]
            for s in grid_starts(zone, s_min, s_max, step, align):
                need_from, need_to = s - buffer_before, s + duration + buffer_after
                # Touching a busy span is fine; overlapping it is not.
                clash = any(bs < need_to and need_from < be for bs, be in block_busy)
                if not clash:
                    slots.append(PySlot(rid, s, s + duration))
    return slots


# --------------------------------------------------------------------------
# The benchmark.
# --------------------------------------------------------------------------


def timed(fn, reps: int, warmup: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(warmup):
        result = fn()
    samples = []
    for _ in range(reps):
        t0 = _time.perf_counter()
        result = fn()
        samples.append(_time.perf_counter() - t0)
        del result
        result = None
    result = fn()
    return samples, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="timed calls of each (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    args = parser.parse_args()

    t0 = _time.perf_counter()
    clinic = clinic_month.clinic_month()
    gen_s = _time.perf_counter() - t0
    counts = (
        len(clinic["resources"]),
        len(clinic["working_hours"]),
        len(clinic["time_off"]),
        len(clinic["appointments"]),
    )
    print(f"clinic: {counts[0]} resources, {counts[1]} rules, {counts[2]} time off, "
          f"{counts[3]} appointments (generated in {gen_s * 1e3:.0f} ms)")
    if counts != (50, 106, 5, 5936):
        print("FAIL: the generated clinic is not the Rust clinic_month", file=sys.stderr)
        return 1

    admin = medsched.Principal("u-bench", TENANT, roles=["clinic_admin"])
    engine = medsched.Engine.in_memory(POLICY_PATH.read_text())
    engine.put_catalog(admin, clinic)
    catalog = Catalog(clinic)
    start, end, now = clinic_month.WINDOW_FROM, clinic_month.WINDOW_TO, clinic_month.NOW
    type_id = clinic_month.TYPE_ID

    def binding() -> list[medsched.Slot]:
        return engine.slots(admin, type_id, start, end, now=now)

    def binding_read() -> list[tuple[str, datetime, datetime]]:
        # Informational, not the gated figure: the same call, then every
        # slot's fields read once (each `.start`/`.end` read builds a new
        # `datetime` from the stored instant).
        return [(s.resource, s.start, s.end) for s in binding()]

    def pure() -> list[PySlot]:
        return pure_python_slots(catalog, type_id, start, end, now)

    # Same results first.
    got = {(s.resource, s.start, s.end) for s in binding()}
    want = {(s.resource, s.start, s.end) for s in pure()}
    distinct = len({s for _, s, _ in got})
    print(f"results: binding {len(got)} entries ({distinct} distinct starts), "
          f"pure Python {len(want)} entries")
    if got != want:
        only_b = sorted(got - want)
        only_p = sorted(want - got)
        print(f"FAIL: results differ: {len(only_b)} only from the binding, "
              f"{len(only_p)} only from pure Python", file=sys.stderr)
        for x in only_b[:10]:
            print(f"  binding only: {x[0]} {x[1].isoformat()}", file=sys.stderr)
        for x in only_p[:10]:
            print(f"  pure only:    {x[0]} {x[1].isoformat()}", file=sys.stderr)
        return 1
    if (len(got), distinct) != (EXPECTED_ENTRIES, EXPECTED_DISTINCT_STARTS):
        print("FAIL: not the entries the Rust bench reports", file=sys.stderr)
        return 1

    # Interleave nothing: each side runs its warm-up and repetitions in turn,
    # with the collector settled before each.
    gc.collect()
    b_samples, _ = timed(binding, args.reps, args.warmup)
    gc.collect()
    r_samples, _ = timed(binding_read, args.reps, args.warmup)
    gc.collect()
    p_samples, _ = timed(pure, args.reps, args.warmup)
    b_med = statistics.median(b_samples) * 1e3
    p_med = statistics.median(p_samples) * 1e3
    ratio = p_med / b_med
    print(f"binding:     median {b_med:.3f} ms over {args.reps} calls "
          f"(min {min(b_samples) * 1e3:.3f}, max {max(b_samples) * 1e3:.3f})")
    r_med = statistics.median(r_samples) * 1e3
    print(f"binding, every slot's fields read: median {r_med:.3f} ms over {args.reps} calls "
          f"(min {min(r_samples) * 1e3:.3f}, max {max(r_samples) * 1e3:.3f}; "
          f"informational, ratio {p_med / r_med:.1f})")
    print(f"pure Python: median {p_med:.3f} ms over {args.reps} calls "
          f"(min {min(p_samples) * 1e3:.3f}, max {max(p_samples) * 1e3:.3f})")
    print(f"binding_median_ms={b_med:.3f} pure_python_median_ms={p_med:.3f} ratio={ratio:.1f}")
    if ratio < TARGET_RATIO:
        print(f"FAIL: ratio {ratio:.1f} is below the target {TARGET_RATIO:.0f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
