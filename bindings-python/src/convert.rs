//! Argument conversion at the Python edge: instants must be timezone-aware
//! `datetime` objects (any tzinfo, `zoneinfo` included); they reach the
//! core as UTC instants and leave it as aware UTC datetimes.

use chrono::{DateTime, NaiveDateTime, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyTzInfo};

use crate::errors;

/// An aware `datetime` as a UTC instant. A naive one (no tzinfo, or a
/// tzinfo without an offset) is refused with `InvalidInputError`.
pub(crate) fn instant(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<DateTime<Utc>> {
    let py = obj.py();
    if obj.cast::<PyDateTime>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be a datetime.datetime, not {}",
            obj.get_type().name()?
        )));
    }
    if obj.call_method0("utcoffset")?.is_none() {
        return Err(errors::invalid(
            py,
            field,
            "naive datetime; pass a timezone-aware one, e.g. with tzinfo=ZoneInfo(\"America/New_York\")",
        ));
    }
    let utc = PyTzInfo::utc(py)?;
    obj.call_method1("astimezone", (utc,))?.extract()
}

/// An optional aware `datetime`.
pub(crate) fn instant_opt(
    field: &str,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<DateTime<Utc>>> {
    obj.map(|o| instant(field, o)).transpose()
}

/// A naive `datetime` as local wall time (for rules that are civil time in
/// a named zone). An aware one is refused with `InvalidInputError`: its
/// offset would silently disagree with the zone.
pub(crate) fn wall_time(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<NaiveDateTime> {
    let py = obj.py();
    if obj.cast::<PyDateTime>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be a datetime.datetime, not {}",
            obj.get_type().name()?
        )));
    }
    if !obj.getattr("tzinfo")?.is_none() {
        return Err(errors::invalid(
            py,
            field,
            "aware datetime; pass naive wall time in `zone`, e.g. datetime(2027, 3, 15, 9, 0)",
        ));
    }
    obj.extract()
}
