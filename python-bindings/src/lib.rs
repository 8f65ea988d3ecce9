//! pyo3 bindings for pyro-rs: the `pyro_rs._native` module.
//!
//! This crate holds conversion ([`convert`], [`serpent`]), error mapping ([`errors`]) and
//! thin wrappers ([`proxy`]) only; the protocol lives in `pyro-wire`, `pyro-codec` and
//! `pyro-runtime`, and the Pyro4 API in the Python package `pyro_rs`.

use pyo3::prelude::*;

mod convert;
mod daemon;
mod errors;
mod lanes;
mod pool;
mod proxy;
mod remote;
mod serpent;

/// Version of the native core, so Python can check it matches the package.
#[pyfunction]
fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The Pyro4 protocol version this core speaks (48).
#[pyfunction]
fn protocol_version() -> u16 {
    pyro_wire::PROTOCOL_VERSION
}

/// Value-model round trip of a Python object (conversion test hook): Python -> Value ->
/// Python, with the given replacement hook for unknown objects.
#[pyfunction]
#[pyo3(signature = (obj, to_hook=None, from_hook=None))]
fn roundtrip<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    to_hook: Option<&Bound<'py, PyAny>>,
    from_hook: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let v = convert::ToValue {
        hook: to_hook,
        subclass_as_base: false,
    }
    .convert(obj, 0)?;
    convert::to_py(py, &v, from_hook)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(protocol_version, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::serpent_parse, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::serpent_serialize, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::serpent_container, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::serpent_float, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::serpent_dumps_builtin, m)?)?;
    m.add_function(wrap_pyfunction!(serpent::_serpent_call_payload, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_raise_runtime_error, m)?)?;
    m.add("RUNTIME_ERROR_VARIANTS", errors::VARIANTS.to_vec())?;
    m.add(
        "SerpentParseError",
        m.py().get_type::<serpent::SerpentParseError>(),
    )?;
    m.add_class::<serpent::Output>()?;
    m.add_class::<proxy::NativeProxy>()?;
    m.add_class::<remote::RemoteMethod>()?;
    m.add_class::<remote::BatchedMethod>()?;
    m.add_class::<daemon::NativeDaemon>()?;
    m.add_class::<daemon::CallState>()?;
    m.add_function(wrap_pyfunction!(daemon::in_daemon_thread, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::locate_ns, m)?)?;
    Ok(())
}
