//! pyo3 bindings for pyro-rs: the `pyro_rs._native` module.
//!
//! This crate holds conversion, error mapping and thin wrappers only; the protocol lives
//! in `pyro-wire` and `pyro-codec`.

use pyo3::prelude::*;

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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(protocol_version, m)?)?;
    Ok(())
}
