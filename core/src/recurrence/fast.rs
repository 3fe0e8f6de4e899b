//! The fast path for the common working-hours forms: `FREQ=WEEKLY` or
//! `FREQ=DAILY` with INTERVAL, plain BYDAY weekdays, WKST and UNTIL. Dates
//! are computed directly from day numbers; a property test proves the
//! result equal to the general path on random rules.

use chrono::NaiveDateTime;

use super::parse::RuleParts;
use super::{Span, MAX_STEPS};
use crate::error::Error;
use crate::time::{day_of_wall, wall_of, weekday_of_day, DAY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Simple {
    weekly: bool,
    interval: i64,
    /// Bit `i` set: weekday `i` (Monday = 0) is selected.
    days: u8,
    /// Day number of DTSTART.
    start_day: i64,
    /// Seconds after local midnight of every occurrence.
    time_of_day: i64,
    /// Day number of the first day of DTSTART's week (by WKST).
    week_origin: i64,
}

impl Simple {
    pub(super) fn from_parts(parts: &RuleParts, dtstart: NaiveDateTime) -> Option<Self> {
        let weekly = match parts.freq.as_str() {
            "WEEKLY" => true,
            "DAILY" => false,
            _ => return None,
        };
        if parts.has_other_parts || parts.count.is_some() {
            return None;
        }
        let wall = wall_of(dtstart);
        let start_day = day_of_wall(wall);
        let mut days = 0u8;
        for d in &parts.byday {
            days |= 1 << super::parse::weekday(d)?;
        }
        if days == 0 {
            if !weekly {
                days = 0x7f;
            } else {
                days = 1 << weekday_of_day(start_day);
            }
        }
        let wkst = super::parse::weekday(&parts.wkst)?;
        let back = (i64::from(weekday_of_day(start_day)) - i64::from(wkst)).rem_euclid(7);
        Some(Self {
            weekly,
            interval: i64::from(parts.interval),
            days,
            start_day,
            time_of_day: wall - start_day * DAY,
            week_origin: start_day - back,
        })
    }

    /// Pushes the occurrence walls in `[from_wall, to_wall)` up to `until`,
    /// at most `limit + 1` of them; every day looked at is a step of the
    /// set's budget.
    ///
    /// # Errors
    ///
    /// [`Error::RecurrenceTooLarge`] when the budget runs out.
    pub(super) fn walls(
        &self,
        span: &Span,
        steps: &mut usize,
        out: &mut Vec<i64>,
    ) -> Result<(), Error> {
        let first = day_of_wall(span.from_wall - self.time_of_day).max(self.start_day);
        let mut last = day_of_wall(span.to_wall - self.time_of_day);
        if let Some(u) = span.until {
            last = last.min(day_of_wall(u - self.time_of_day));
        }
        let mut emitted = 0usize;
        let mut day = first;
        while day <= last {
            *steps += 1;
            if *steps > MAX_STEPS {
                return Err(Error::RecurrenceTooLarge { limit: MAX_STEPS });
            }
            let ok = if self.weekly {
                (day - self.week_origin).div_euclid(7) % self.interval == 0
            } else {
                (day - self.start_day) % self.interval == 0
            };
            if ok && self.days & (1 << weekday_of_day(day)) != 0 {
                let w = day * DAY + self.time_of_day;
                if w >= span.from_wall && w < span.to_wall && span.until.is_none_or(|u| w <= u) {
                    out.push(w);
                    emitted += 1;
                    if emitted > span.limit {
                        break;
                    }
                }
            }
            day += 1;
        }
        Ok(())
    }
}
