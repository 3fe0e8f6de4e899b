//! Python bindings of medsched: the native module `medsched._medsched`,
//! imported through the pure-Python package `medsched`.
//!
//! Every exported method reads: convert the arguments, call the core (with
//! the GIL released), convert the result. Core errors leave through
//! `errors::to_py`, the one mapping from `medsched_core::Error` to the
//! exception classes of `medsched`. No scheduling rule lives here.

mod convert;
mod engine;
mod errors;
mod types;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

#[pymodule]
fn _medsched(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<types::Principal>()?;
    m.add_class::<types::Slot>()?;
    m.add_class::<types::Appointment>()?;
    m.add_class::<types::Event>()?;
    m.add_class::<types::Guardianship>()?;
    m.add_class::<types::Elevation>()?;
    m.add_class::<types::Booking>()?;
    m.add_class::<types::Reason>()?;
    m.add_class::<types::Explanation>()?;
    m.add_class::<types::OccurrenceReport>()?;
    m.add_class::<types::SeriesBooking>()?;
    m.add_class::<types::AuditRecord>()?;
    m.add_class::<engine::Engine>()?;
    m.add(
        "ERROR_CODES",
        PyTuple::new(m.py(), medsched_core::Error::CODES)?,
    )?;
    m.add_function(wrap_pyfunction!(errors::error_class_name, m)?)?;
    m.add_function(wrap_pyfunction!(errors::raise_sample_error, m)?)?;
    Ok(())
}
