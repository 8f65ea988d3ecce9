//! The one place where runtime errors become Python exceptions (the pyca/cryptography
//! `error.rs` habit): each [`pyro_runtime::Error`] variant maps to the `pyro_rs.errors`
//! class with Pyro4's name, or to the Python builtin Pyro4 raises there. A remote
//! exception is rebuilt by the Python `dict_to_class` hook from its class dict, so it is
//! the real class (builtin or `pyro_rs.errors`) with `_pyroTraceback` set; unknown
//! classes give `SerializeError`, as in Pyro4.

use crate::convert;
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::prelude::*;
use pyro_runtime::Error;

/// The `pyro_rs.errors` class name (or builtin) for a non-remote error variant.
pub(crate) fn class_for(e: &Error) -> &'static str {
    match e {
        Error::Pyro(_) => "PyroError",
        Error::Communication(_) => "CommunicationError",
        Error::ConnectionClosed(_) => "ConnectionClosedError",
        Error::Timeout(_) => "TimeoutError",
        Error::Protocol(_) => "ProtocolError",
        Error::MessageTooLarge(_) => "MessageTooLargeError",
        Error::Naming(_) => "NamingError",
        Error::Daemon(_) => "DaemonError",
        Error::Security(_) => "SecurityError",
        Error::Serialize(_) => "SerializeError",
        Error::Attribute(_) => "AttributeError",
        Error::Config(_) => "ValueError",
        Error::Remote(_) => "<remote>",
    }
}

fn pyro_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("pyro_rs.errors")?.getattr(name)
}

/// Convert a runtime error to a Python exception. `dict_to_class` rebuilds remote
/// exceptions from their class dict.
pub(crate) fn to_pyerr(py: Python<'_>, e: Error, dict_to_class: &Bound<'_, PyAny>) -> PyErr {
    match build(py, e, dict_to_class) {
        Ok(err) => err,
        Err(err) => err,
    }
}

fn build(py: Python<'_>, e: Error, dict_to_class: &Bound<'_, PyAny>) -> PyResult<PyErr> {
    let msg = e.to_string();
    Ok(match e {
        Error::Attribute(_) => PyAttributeError::new_err(msg),
        Error::Config(_) => PyValueError::new_err(msg),
        Error::Remote(r) => {
            let exc = convert::to_py(py, &r.to_value(), Some(dict_to_class))?;
            PyErr::from_value(exc)
        }
        other => {
            let cls = pyro_class(py, class_for(&other))?;
            PyErr::from_value(cls.call1((msg,))?)
        }
    })
}

/// Raise the Python exception for one runtime error variant, by variant name; the test
/// of the mapping walks every variant through this.
#[pyfunction]
pub(crate) fn _raise_runtime_error(
    py: Python<'_>,
    variant: &str,
    message: &str,
    dict_to_class: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let m = message.to_string();
    let e = match variant {
        "Pyro" => Error::Pyro(m),
        "Communication" => Error::Communication(m),
        "ConnectionClosed" => Error::ConnectionClosed(m),
        "Timeout" => Error::Timeout(m),
        "Protocol" => Error::Protocol(m),
        "MessageTooLarge" => Error::MessageTooLarge(m),
        "Naming" => Error::Naming(m),
        "Daemon" => Error::Daemon(m),
        "Security" => Error::Security(m),
        "Serialize" => Error::Serialize(m),
        "Attribute" => Error::Attribute(m),
        "Config" => Error::Config(m),
        "Remote" => {
            let mut r = pyro_codec::envelope::RemoteException::new(
                "builtins.ValueError",
                vec![pyro_codec::Value::Str(m)],
            );
            r.attributes.set(
                "_pyroTraceback",
                pyro_codec::Value::List(vec![pyro_codec::Value::str("remote tb line\n")]),
            );
            Error::remote_exception(r)
        }
        other => return Err(PyValueError::new_err(format!("unknown variant {other}"))),
    };
    Err(to_pyerr(py, e, dict_to_class))
}

/// Names of every runtime error variant (kept next to the mapping so a new variant
/// fails to compile in [`class_for`] and shows up here).
pub(crate) const VARIANTS: &[&str] = &[
    "Pyro",
    "Communication",
    "ConnectionClosed",
    "Timeout",
    "Protocol",
    "MessageTooLarge",
    "Naming",
    "Daemon",
    "Security",
    "Serialize",
    "Attribute",
    "Config",
    "Remote",
];
