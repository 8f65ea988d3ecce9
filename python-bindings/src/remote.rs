//! `RemoteMethod`: what `proxy.name` gives (`pyro_rs.core._RemoteMethod`). Calling it
//! hands `(name, args, kwargs)` to the proxy's `_pyroInvoke`, again after a closed
//! connection or a timeout, up to the proxy's MAX_RETRIES (Pyro4's rule); any other
//! failure is raised at once. Native, because one is made for every remote call.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

#[pyclass(module = "pyro_rs._native", name = "RemoteMethod", frozen)]
pub(crate) struct RemoteMethod {
    send: Py<PyAny>,
    name: Py<PyString>,
    max_retries: i64,
}

/// `base.name`: `proxy.a.b` names the remote method `"a.b"` (Pyro4 allows dotted names).
fn dotted(py: Python<'_>, base: &Py<PyString>, name: &str) -> PyResult<Py<PyString>> {
    let text = format!("{}.{name}", base.bind(py).to_str()?);
    Ok(PyString::new(py, &text).unbind())
}

/// Pyro4 retries only these: the connection broke or the reply did not come in time.
fn retryable(py: Python<'_>, err: &PyErr) -> PyResult<bool> {
    let errors = py.import("pyro_rs.errors")?;
    for class in ["ConnectionClosedError", "TimeoutError"] {
        if err.is_instance(py, &errors.getattr(class)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[pymethods]
impl RemoteMethod {
    #[new]
    fn new(send: Py<PyAny>, name: Py<PyString>, max_retries: i64) -> Self {
        RemoteMethod {
            send,
            name,
            max_retries,
        }
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<RemoteMethod> {
        Ok(RemoteMethod {
            send: self.send.clone_ref(py),
            name: dotted(py, &self.name, name)?,
            max_retries: self.max_retries,
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: Bound<'_, PyTuple>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let kwargs = kwargs.unwrap_or_else(|| PyDict::new(py));
        let send = self.send.bind(py);
        let name = self.name.bind(py);
        let mut attempt = 0;
        // As `for attempt in range(max_retries + 1)`: a negative count sends nothing.
        while attempt <= self.max_retries {
            match send.call1((name, &args, &kwargs)) {
                Ok(result) => return Ok(result.unbind()),
                Err(err) => {
                    if attempt >= self.max_retries || !retryable(py, &err)? {
                        return Err(err);
                    }
                }
            }
            attempt += 1;
        }
        Ok(py.None())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<pyro_rs remote method {}>",
            self.name.bind(py).to_str()?
        ))
    }
}

/// What `batch.name` gives (`pyro_rs.core._BatchedRemoteMethod`): calling it only
/// records `(name, args, kwargs)` in the batch's list, to be sent with the others.
#[pyclass(module = "pyro_rs._native", name = "BatchedMethod", frozen)]
pub(crate) struct BatchedMethod {
    calls: Py<PyList>,
    name: Py<PyString>,
}

#[pymethods]
impl BatchedMethod {
    #[new]
    fn new(calls: Py<PyList>, name: Py<PyString>) -> Self {
        BatchedMethod { calls, name }
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<BatchedMethod> {
        Ok(BatchedMethod {
            calls: self.calls.clone_ref(py),
            name: dotted(py, &self.name, name)?,
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: Bound<'_, PyTuple>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let kwargs = kwargs.unwrap_or_else(|| PyDict::new(py));
        let call = PyTuple::new(
            py,
            [self.name.bind(py).as_any(), args.as_any(), kwargs.as_any()],
        )?;
        self.calls.bind(py).append(call)
    }
}
