//! `bt_runtime`: the decision kernel exposed to Python.
use pyo3::prelude::*;

mod config_py;
mod indicators_py;
mod kernel_py;

/// The one source of default strategy config values, as a Python dict.
#[pyfunction]
fn defaults(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let text = aiq_config::defaults_json().to_string();
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (text,))?.unbind())
}

/// Validate a fully merged config (JSON text). Raises `ValueError` naming the key path.
#[pyfunction]
fn validate_config_json(text: &str) -> PyResult<()> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("invalid JSON: {e}")))?;
    aiq_config::from_json_value(value)
        .map(|_| ())
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// Interval names and their length in milliseconds, e.g. `{"5m": 300000}` (the one table).
#[pyfunction]
fn intervals() -> std::collections::BTreeMap<&'static str, i64> {
    aiq_config::INTERVALS.iter().copied().collect()
}

#[pymodule]
fn bt_runtime(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(defaults, m)?)?;
    m.add_function(wrap_pyfunction!(validate_config_json, m)?)?;
    m.add_function(wrap_pyfunction!(intervals, m)?)?;
    config_py::register(m)?;
    indicators_py::register(m)?;
    kernel_py::register(m)?;
    Ok(())
}
