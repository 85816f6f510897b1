//! The layered config loader (`aiq_config::layered`) for Python: the parsed YAML document goes
//! in, every problem or the merged config and its id come out. Reading the file (existence,
//! permissions, YAML syntax, size limits) stays in `engine.config.yaml_file`.

use aiq_config::schema::{Kind, FIELDS};
use aiq_config::{Problem, Raw};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A parsed YAML value (dicts, lists, scalars; anything else is kept by type name and repr).
fn to_raw(obj: &Bound<'_, PyAny>) -> PyResult<Raw> {
    if obj.is_none() {
        return Ok(Raw::Null);
    }
    if let Ok(b) = obj.downcast::<PyBool>() {
        return Ok(Raw::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i128>() {
            Ok(i) => Raw::Int(i),
            Err(_) => Raw::BigInt(obj.str()?.to_string()),
        });
    } else if let Ok(f) = obj.downcast::<PyFloat>() {
        return Ok(Raw::Float(f.value()));
    } else if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Raw::Str(s.to_str()?.to_string()));
    } else if let Ok(d) = obj.downcast::<PyDict>() {
        let mut out = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            out.push((to_raw(&k)?, to_raw(&v)?));
        }
        return Ok(Raw::Map(out));
    } else if let Ok(l) = obj.downcast::<PyList>() {
        return Ok(Raw::List(l.iter().map(|x| to_raw(&x)).collect::<PyResult<_>>()?));
    } else if let Ok(t) = obj.downcast::<PyTuple>() {
        return Ok(Raw::List(t.iter().map(|x| to_raw(&x)).collect::<PyResult<_>>()?));
    }
    Ok(Raw::Other { type_name: obj.get_type().name()?.to_string(), repr: obj.repr()?.to_string() })
}

fn pairs(problems: Vec<Problem>) -> Vec<(String, String)> {
    problems.into_iter().map(|p| (p.key_path, p.message)).collect()
}

type DocumentCheck = (Vec<(String, String)>, Vec<&'static str>, Vec<String>);

/// Check a parsed config file's layout and keys: `(problems, modes, symbols)` where `problems`
/// lists `(key_path, message)` for every problem, `modes` the canonical strategy modes with a
/// section and `symbols` the sorted symbols with overrides anywhere.
#[pyfunction]
fn check_config_document(raw: &Bound<'_, PyAny>) -> PyResult<DocumentCheck> {
    Ok(match aiq_config::check_document(&to_raw(raw)?) {
        Ok(doc) => (Vec::new(), doc.modes(), doc.symbols().to_vec()),
        Err(problems) => (pairs(problems), Vec::new(), Vec::new()),
    })
}

type Resolution = (Vec<(String, String)>, Option<String>, Option<String>, Vec<String>);

/// Merge, check and hash the config of a parsed file for `symbol`, `live` (live/dry_live) and
/// `strategy_mode`: `(problems, canonical_json, config_id, layers)`; on problems the JSON and
/// id are None.
#[pyfunction]
#[pyo3(signature = (raw, symbol=None, live=false, strategy_mode=None, live_max_open_positions=None))]
fn resolve_config(
    raw: &Bound<'_, PyAny>,
    symbol: Option<&str>,
    live: bool,
    strategy_mode: Option<&str>,
    live_max_open_positions: Option<u32>,
) -> PyResult<Resolution> {
    let doc = match aiq_config::check_document(&to_raw(raw)?) {
        Ok(doc) => doc,
        Err(problems) => return Ok((pairs(problems), None, None, Vec::new())),
    };
    Ok(match doc.resolve(symbol, live, strategy_mode, live_max_open_positions) {
        Ok(r) => (Vec::new(), Some(r.canonical_json), Some(r.config_id), r.layers),
        Err(problems) => (pairs(problems), None, None, Vec::new()),
    })
}

/// Every leaf key of a merged config (dotted path) with its Python type, in declaration order:
/// `float`, `int`, `bool`, `str`, `list[str]` or `Literal['a', 'b']`.
#[pyfunction]
fn config_fields() -> Vec<(&'static str, String)> {
    FIELDS
        .iter()
        .map(|(path, kind)| {
            let ty = match kind {
                Kind::Float { .. } => "float".to_string(),
                Kind::Int { .. } => "int".to_string(),
                Kind::Bool => "bool".to_string(),
                Kind::Choice(c) => {
                    let quoted: Vec<String> = c.iter().map(|x| format!("{x:?}")).collect();
                    format!("Literal[{}]", quoted.join(", "))
                }
                Kind::Interval { .. } => "str".to_string(),
                Kind::StrList => "list[str]".to_string(),
            };
            (*path, ty)
        })
        .collect()
}

/// Canonical strategy modes, their aliases and the live safety limit on
/// `trade.max_open_positions`.
#[pyfunction]
fn strategy_modes() -> (Vec<&'static str>, Vec<(&'static str, &'static str)>, u32) {
    use aiq_config::layered::{DEFAULT_LIVE_MAX_OPEN_POSITIONS, STRATEGY_MODES, STRATEGY_MODE_ALIASES};
    (STRATEGY_MODES.to_vec(), STRATEGY_MODE_ALIASES.to_vec(), DEFAULT_LIVE_MAX_OPEN_POSITIONS)
}

/// The canonical strategy mode for `name` (a canonical name or an alias, any case); raises
/// ValueError naming the choices.
#[pyfunction]
fn canonical_strategy_mode(name: &str) -> PyResult<&'static str> {
    aiq_config::layered::canonical_strategy_mode(name).map_err(pyo3::exceptions::PyValueError::new_err)
}

/// Sorted symbols with overrides anywhere in a parsed config file (`symbols`, `live.symbols`,
/// `modes.<name>.symbols`); case-sensitive.
#[pyfunction]
fn config_symbols(raw: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    Ok(aiq_config::layered::list_symbols(&to_raw(raw)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_config_document, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(config_fields, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_modes, m)?)?;
    m.add_function(wrap_pyfunction!(canonical_strategy_mode, m)?)?;
    m.add_function(wrap_pyfunction!(config_symbols, m)?)?;
    Ok(())
}
