//! Interval algebra on half-open `[start, end)` spans of integer instants.
//! Every function takes sorted input and writes sorted, disjoint output.

/// A half-open span `[start, end)` of instants (seconds since the epoch).
pub type Span = (i64, i64);

/// Sorts spans and merges those that overlap or touch.
pub fn normalize(spans: &mut Vec<Span>) {
    spans.retain(|s| s.1 > s.0);
    spans.sort_unstable();
    let mut out = 0usize;
    for i in 0..spans.len() {
        let Some(&cur) = spans.get(i) else { break };
        if out > 0 {
            if let Some(last) = spans.get_mut(out - 1) {
                if cur.0 <= last.1 {
                    last.1 = last.1.max(cur.1);
                    continue;
                }
            }
        }
        if let Some(slot) = spans.get_mut(out) {
            *slot = cur;
        }
        out += 1;
    }
    spans.truncate(out);
}

/// `a − b` for sorted disjoint `a` and spans `b` sorted by start (they may
/// overlap each other). Appends to `out`.
pub fn subtract(a: &[Span], b: &[Span], out: &mut Vec<Span>) {
    let mut j = 0usize;
    for &(start, end) in a {
        let mut cur = start;
        // Skip spans of b that end before this one starts.
        while b.get(j).is_some_and(|s| s.1 <= cur) {
            j += 1;
        }
        let mut k = j;
        while let Some(&(bs, be)) = b.get(k) {
            if bs >= end {
                break;
            }
            if be > cur {
                if bs > cur {
                    out.push((cur, bs));
                }
                cur = cur.max(be);
                if cur >= end {
                    break;
                }
            }
            k += 1;
        }
        if cur < end {
            out.push((cur, end));
        }
    }
}

/// Clips sorted disjoint spans to `[from, to)` in place.
pub fn clip(spans: &mut Vec<Span>, from: i64, to: i64) {
    spans.retain_mut(|s| {
        s.0 = s.0.max(from);
        s.1 = s.1.min(to);
        s.1 > s.0
    });
}

/// Where at least `c` of the spans (sorted by start, possibly overlapping)
/// overlap one another. Appends sorted disjoint spans to `out`; `events` is
/// scratch space.
pub fn at_least(spans: &[Span], c: u32, events: &mut Vec<(i64, i32)>, out: &mut Vec<Span>) {
    if c <= 1 {
        // Sorted by start: one pass merges them.
        for &(s, e) in spans {
            if e <= s {
                continue;
            }
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        return;
    }
    events.clear();
    for &(s, e) in spans {
        if e > s {
            events.push((s, 1));
            events.push((e, -1));
        }
    }
    // Ends sort before starts at one instant: touching is not overlapping.
    events.sort_unstable();
    let mut depth = 0i64;
    let mut open_at = None;
    let mut i = 0usize;
    while let Some(&(t, _)) = events.get(i) {
        // Apply every event at this instant before judging the depth.
        while let Some(&(t2, d)) = events.get(i) {
            if t2 != t {
                break;
            }
            depth += i64::from(d);
            i += 1;
        }
        if depth >= i64::from(c) {
            if open_at.is_none() {
                open_at = Some(t);
            }
        } else if let Some(s) = open_at.take() {
            out.push((s, t));
        }
    }
}

/// Whether `[start, end)` lies inside one of the sorted disjoint spans.
pub fn covers(spans: &[Span], start: i64, end: i64) -> bool {
    let i = spans.partition_point(|s| s.1 < end);
    spans.get(i).is_some_and(|s| s.0 <= start && s.1 >= end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_handles_overlapping_and_touching() {
        let a = [(0, 10), (20, 30)];
        let b = [(2, 4), (3, 5), (10, 21), (29, 40)];
        let mut out = Vec::new();
        subtract(&a, &b, &mut out);
        assert_eq!(out, [(0, 2), (5, 10), (21, 29)]);
    }

    #[test]
    fn at_least_counts_depth_and_touching_is_not_overlap() {
        let spans = [(0, 10), (5, 15), (10, 20), (12, 14)];
        let (mut ev, mut out) = (Vec::new(), Vec::new());
        at_least(&spans, 2, &mut ev, &mut out);
        assert_eq!(out, [(5, 15)]);
        out.clear();
        at_least(&spans, 3, &mut ev, &mut out);
        assert_eq!(out, [(12, 14)]);
    }

    #[test]
    fn normalize_merges_touching() {
        let mut v = vec![(5, 7), (0, 5), (9, 9), (8, 10)];
        normalize(&mut v);
        assert_eq!(v, [(0, 7), (8, 10)]);
    }

    #[test]
    fn covers_needs_one_span() {
        let v = [(0, 10), (10, 20)];
        assert!(covers(&v, 0, 10));
        assert!(!covers(&v, 5, 15));
    }
}
