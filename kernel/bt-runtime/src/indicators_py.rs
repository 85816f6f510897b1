//! Python bindings for the indicator crate (`compute_indicators`). Owned by the indicators work.
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
