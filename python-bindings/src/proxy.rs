//! `NativeProxy`: the Rust client proxy ([`BlockingProxy`]) for the Python `Proxy`.
//!
//! The Python class keeps Pyro4's API and decisions (metadata checks, oneway set,
//! retries, annotations hooks); this wrapper converts arguments, releases the GIL for all
//! network IO and maps errors. The inner proxy sits behind a mutex that is only taken
//! with the GIL released, so a thread waiting for it never blocks other Python threads.

use crate::convert::{self, ToValue};
use crate::errors;
use crate::serpent;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use pyro_codec::{Dict, SerializerKind, Value};
use pyro_runtime::blocking::BlockingProxy;
use pyro_runtime::proxy::Reply;
use pyro_runtime::{Config, Error};
use pyro_wire::Uri;
use std::sync::{Arc, Mutex, MutexGuard};

/// What `NativeProxy.invoke` hands Python: `(is_stream, value, seq, annotations)`.
type InvokeTuple<'py> = (bool, Bound<'py, PyAny>, u16, Option<Bound<'py, PyDict>>);

/// What `NativeProxy.invoke_raw` hands Python: `(flags, data, stream_id)`.
type RawTuple<'py> = (u16, Bound<'py, PyBytes>, Option<String>);

/// The Rust client proxy behind a Python `pyro_rs.core.Proxy`.
#[pyclass(module = "pyro_rs._native", name = "NativeProxy")]
pub(crate) struct NativeProxy {
    inner: Mutex<BlockingProxy>,
}

fn lock(m: &Mutex<BlockingProxy>) -> MutexGuard<'_, BlockingProxy> {
    // A panic while holding the lock cannot leave the proxy half-written in a way that
    // matters more than the connection, which the next call re-checks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn err_plain(py: Python<'_>, e: Error) -> PyErr {
    let none = py.None().into_bound(py);
    errors::to_pyerr(py, e, &none)
}

fn to_values(conv: &ToValue<'_, '_>, args: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    let mut out = Vec::new();
    for a in args.try_iter()? {
        out.push(conv.convert(&a?, 1)?);
    }
    Ok(out)
}

/// Annotations as Python sees them: `{4-char str: bytes}`.
fn annotations_dict(py: Python<'_>, pairs: Vec<([u8; 4], Vec<u8>)>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(
            PyString::new(py, &String::from_utf8_lossy(&k)),
            PyBytes::new(py, &v),
        )?;
    }
    Ok(d)
}

#[pymethods]
impl NativeProxy {
    /// A proxy for `uri` with these Pyro4 config items (name, text value).
    #[new]
    fn new(py: Python<'_>, uri: &str, config: Vec<(String, String)>) -> PyResult<Self> {
        let mut cfg = Config::default();
        for (k, v) in &config {
            cfg.set(k, v).map_err(|e| err_plain(py, e))?;
        }
        let uri =
            Uri::parse_with_ns_port(uri, cfg.ns_port).map_err(|e| err_plain(py, Error::from(e)))?;
        let mut p = BlockingProxy::with_config(uri, Arc::new(cfg)).map_err(|e| err_plain(py, e))?;
        // Retries are done by the Python layer (Pyro4's _RemoteMethod loop).
        p.proxy_mut().set_max_retries(0);
        Ok(NativeProxy {
            inner: Mutex::new(p),
        })
    }

    /// Per-proxy settings: timeout (seconds, None = none), HMAC key, serializer name,
    /// metadata on/off.
    fn configure(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        hmac_key: Option<Vec<u8>>,
        serializer: &str,
        metadata: bool,
    ) -> PyResult<()> {
        let kind = SerializerKind::from_name(serializer).ok_or_else(|| {
            err_plain(
                py,
                Error::Serialize(format!(
                    "serializer '{serializer}' is unknown or not available"
                )),
            )
        })?;
        let mut g = lock(&self.inner);
        let p = g.proxy_mut();
        p.set_timeout(timeout.and_then(pyro_runtime::config::seconds));
        p.set_hmac_key(hmac_key.filter(|k| !k.is_empty()));
        p.set_metadata_enabled(metadata);
        if p.serializer() != kind {
            p.set_serializer(kind).map_err(|e| err_plain(py, e))?;
        }
        Ok(())
    }

    /// The handshake data sent on connect (converted with the serializer's hook).
    fn set_handshake(&self, data: &Bound<'_, PyAny>, to_hook: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = ToValue {
            hook: Some(to_hook),
            subclass_as_base: false,
        }
        .convert(data, 0)?;
        lock(&self.inner).proxy_mut().set_handshake(v);
        Ok(())
    }

    /// Annotations sent with the next messages: `{4-char str: bytes}`.
    fn set_annotations(&self, annotations: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut pairs = Vec::new();
        for (k, v) in annotations.iter() {
            let key: String = k.extract()?;
            let key: [u8; 4] = key.as_bytes().try_into().map_err(|_| {
                PyValueError::new_err(format!(
                    "annotation key must be 4 ascii characters: {key:?}"
                ))
            })?;
            let value: Vec<u8> = v.extract()?;
            pairs.push((key, value));
        }
        let mut g = lock(&self.inner);
        let ann = g.proxy_mut().annotations_mut();
        *ann = pyro_wire::Annotations::new();
        for (k, v) in pairs {
            ann.insert(k, v);
        }
        Ok(())
    }

    /// Connect and handshake if not connected (Pyro4's `__pyroCreateConnection`).
    /// True if a new connection was made.
    fn connect(&self, py: Python<'_>, from_hook: &Bound<'_, PyAny>) -> PyResult<bool> {
        py.detach(|| lock(&self.inner).bind())
            .map_err(|e| errors::to_pyerr(py, e, from_hook))
    }

    /// Close the connection.
    fn release(&self, py: Python<'_>) {
        py.detach(|| lock(&self.inner).release())
    }

    /// True while connected.
    fn is_connected(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.inner).proxy().is_connected())
    }

    /// The (resolved, after connect) URI text.
    fn uri(&self, py: Python<'_>) -> String {
        py.detach(|| lock(&self.inner).proxy().uri().to_string())
    }

    /// The current sequence number.
    fn seq(&self, py: Python<'_>) -> u16 {
        py.detach(|| lock(&self.inner).proxy().seq())
    }

    /// What the daemon answered in the handshake (None before connecting).
    fn handshake_response<'py>(
        &self,
        py: Python<'py>,
        from_hook: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = py.detach(|| lock(&self.inner).proxy().handshake_response().cloned());
        match v {
            Some(v) => convert::to_py(py, &v, Some(from_hook)),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// `(methods, oneway, attrs)` from the metadata, as lists of str.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let (m, o, a) = py.detach(|| {
            let g = lock(&self.inner);
            let p = g.proxy();
            let names = |s: &std::collections::HashSet<String>| {
                let mut v: Vec<String> = s.iter().cloned().collect();
                v.sort();
                v
            };
            (
                names(p.methods()),
                names(p.oneway_methods()),
                names(p.attributes()),
            )
        });
        PyTuple::new(
            py,
            [
                PyList::new(py, m)?,
                PyList::new(py, o)?,
                PyList::new(py, a)?,
            ],
        )
    }

    /// Annotations of the last reply: `{4-char str: bytes}`.
    fn response_annotations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pairs: Vec<([u8; 4], Vec<u8>)> = py.detach(|| {
            lock(&self.inner)
                .response_annotations()
                .iter()
                .map(|(k, v)| (*k, v.to_vec()))
                .collect()
        });
        annotations_dict(py, pairs)
    }

    /// One invocation (Pyro4's `_pyroInvoke`): returns `(False, value, seq, annotations)`
    /// or, for a remote iterator, `(True, stream_id, seq, annotations)`; `seq` is the
    /// proxy's sequence number after the call, `annotations` the reply's (None when
    /// there are none). `args` is any iterable, `kwargs` a dict or None.
    /// `to_hook` replaces objects the conversion does not know; `from_hook` is
    /// `dict_to_class`.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (object, method, args, kwargs, flags, to_hook, from_hook, subclass_as_base))]
    fn invoke<'py>(
        &self,
        py: Python<'py>,
        object: Option<String>,
        method: String,
        args: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
        flags: u16,
        to_hook: &Bound<'py, PyAny>,
        from_hook: &Bound<'py, PyAny>,
        subclass_as_base: bool,
    ) -> PyResult<InvokeTuple<'py>> {
        if let Some(done) = self.invoke_serpent(
            py,
            object.as_deref(),
            &method,
            args,
            kwargs,
            flags,
            from_hook,
        )? {
            return Ok(done);
        }
        let conv = ToValue {
            hook: Some(to_hook),
            subclass_as_base,
        };
        let args = to_values(&conv, args)?;
        let kwargs = match kwargs {
            None => None,
            Some(d) => match conv.convert(d.as_any(), 0)? {
                Value::Dict(d) => Some(d),
                _ => Some(Dict::new()),
            },
        };
        let (reply, seq, ann) = py.detach(|| {
            let mut g = lock(&self.inner);
            let reply = g.invoke(object.as_deref(), &method, args, kwargs, flags);
            let ann: Vec<([u8; 4], Vec<u8>)> = g
                .response_annotations()
                .iter()
                .map(|(k, v)| (*k, v.to_vec()))
                .collect();
            (reply, g.proxy().seq(), ann)
        });
        let ann = if ann.is_empty() {
            None
        } else {
            Some(annotations_dict(py, ann)?)
        };
        match reply {
            Ok(Reply::Value(v)) => Ok((false, convert::to_py(py, &v, Some(from_hook))?, seq, ann)),
            Ok(Reply::Stream(id)) => Ok((true, PyString::new(py, &id).into_any(), seq, ann)),
            Err(e) => Err(errors::to_pyerr(py, e, from_hook)),
        }
    }

    /// Connect if needed (handshake and metadata in this proxy's serializer) and return
    /// the object id a raw payload must name: the resolved one for `PYRONAME:` URIs, as
    /// Pyro4's `_pyroInvoke` serializes with `self._pyroConnection.objectId`.
    fn connect_for_call(&self, py: Python<'_>, from_hook: &Bound<'_, PyAny>) -> PyResult<String> {
        py.detach(|| lock(&self.inner).connect_for_call().map(str::to_string))
            .map_err(|e| errors::to_pyerr(py, e, from_hook))
    }

    /// One INVOKE whose payload the Python layer serialized itself (Python's pickle, for
    /// Pyro4's `PickleSerializer`), the IO done with the GIL released. Returns None for a
    /// oneway call, else `(flags, data, stream_id)` with `data` undecoded: FLAGS_EXCEPTION
    /// means `data` is the exception to raise, `stream_id` is set for a remote iterator.
    #[pyo3(signature = (flags, serializer_id, payload, from_hook))]
    fn invoke_raw<'py>(
        &self,
        py: Python<'py>,
        flags: u16,
        serializer_id: u16,
        payload: &[u8],
        from_hook: &Bound<'py, PyAny>,
    ) -> PyResult<Option<RawTuple<'py>>> {
        let reply = py.detach(|| lock(&self.inner).invoke_raw(flags, serializer_id, payload, None));
        match reply {
            Ok(None) => Ok(None),
            Ok(Some(r)) => Ok(Some((r.flags, PyBytes::new(py, &r.data), r.stream_id))),
            Err(e) => Err(errors::to_pyerr(py, e, from_hook)),
        }
    }
}

impl NativeProxy {
    /// `invoke` for a serpent proxy without the value tree: the call is written as
    /// serpent text straight from the Python arguments, sent as a raw INVOKE, and a
    /// normal reply is parsed straight into Python objects (then Pyro4's
    /// `recreate_classes`). `Ok(None)` when this path does not apply (another
    /// serializer, or arguments that are not all exact builtins): `invoke` then takes
    /// the value path, which produces the same bytes and the same errors. Exception
    /// replies are decoded by the runtime, so they raise exactly what the value path
    /// raises.
    #[allow(clippy::too_many_arguments)]
    fn invoke_serpent<'py>(
        &self,
        py: Python<'py>,
        object: Option<&str>,
        method: &str,
        args: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
        flags: u16,
        from_hook: &Bound<'py, PyAny>,
    ) -> PyResult<Option<InvokeTuple<'py>>> {
        // The payload names the resolved object id, known once connected.
        let target = py.detach(|| {
            let mut g = lock(&self.inner);
            if g.proxy().serializer() != SerializerKind::Serpent {
                return Ok(None);
            }
            match object {
                Some(o) => Ok(Some(o.to_string())),
                None if g.proxy().is_connected() => Ok(Some(g.proxy().object_id().to_string())),
                None => g.connect_for_call().map(|o| Some(o.to_string())),
            }
        });
        let target = match target {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(e) => return Err(errors::to_pyerr(py, e, from_hook)),
        };
        let mut buf = serpent::take_out_buf();
        // A Python error while writing (a failing __repr__, say) is left to the value
        // path, which meets it again and raises it as before.
        if !serpent::write_call(&mut buf, &target, method, args, kwargs).unwrap_or(false) {
            serpent::keep_out_buf(buf);
            return Ok(None);
        }
        let (reply, seq, ann, limits) = py.detach(|| {
            let mut g = lock(&self.inner);
            let reply = g
                .invoke_raw(flags, SerializerKind::Serpent.id(), &buf, None)
                .and_then(|r| match r {
                    Some(r) if r.is_exception() => Err(g.proxy_mut().raw_reply_error(&r)),
                    other => Ok(other),
                });
            let ann: Vec<([u8; 4], Vec<u8>)> = g
                .response_annotations()
                .iter()
                .map(|(k, v)| (*k, v.to_vec()))
                .collect();
            (reply, g.proxy().seq(), ann, *g.proxy().decode_limits())
        });
        serpent::keep_out_buf(buf);
        let ann = if ann.is_empty() {
            None
        } else {
            Some(annotations_dict(py, ann)?)
        };
        let raw = match reply {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(Some((false, py.None().into_bound(py), seq, ann))),
            Err(e) => return Err(errors::to_pyerr(py, e, from_hook)),
        };
        if let Some(id) = raw.stream_id {
            return Ok(Some((true, PyString::new(py, &id).into_any(), seq, ann)));
        }
        let value = match serpent::parse_reply(py, &raw.data, &limits, from_hook)? {
            Some(v) => v,
            // Refused by the parser: the value path's decode gives the error to raise.
            None => match SerializerKind::Serpent.decode(&raw.data, &limits) {
                Ok(v) => convert::to_py(
                    py,
                    &pyro_codec::envelope::recreate_classes(v),
                    Some(from_hook),
                )?,
                Err(e) => return Err(errors::to_pyerr(py, e.into(), from_hook)),
            },
        };
        Ok(Some((false, value, seq, ann)))
    }
}

/// Pyro4's `locateNS(host, port, broadcast, hmac_key)`: the name server's URI text,
/// found by the Rust client (direct connection or UDP broadcast), with the GIL released.
#[pyfunction]
#[pyo3(signature = (host, port, broadcast, hmac_key, config))]
pub(crate) fn locate_ns(
    py: Python<'_>,
    host: Option<String>,
    port: Option<u16>,
    broadcast: bool,
    hmac_key: Option<Vec<u8>>,
    config: Vec<(String, String)>,
) -> PyResult<String> {
    let mut cfg = Config::default();
    for (k, v) in &config {
        cfg.set(k, v).map_err(|e| err_plain(py, e))?;
    }
    let cfg = Arc::new(cfg);
    let result = py.detach(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Communication(format!("cannot start the runtime: {e}")))?;
        rt.block_on(async {
            let ns = pyro_runtime::locate_ns_with(
                &cfg,
                host.as_deref(),
                port,
                broadcast,
                hmac_key.as_deref().filter(|k| !k.is_empty()),
            )
            .await?;
            Ok::<String, Error>(ns.proxy().uri().to_string())
        })
    });
    result.map_err(|e| err_plain(py, e))
}
