//! `NativeDaemon`: the Rust daemon ([`pyro_runtime::Daemon`]) serving Python objects for
//! the Python `pyro_rs.core.Daemon`.
//!
//! Sockets, framing, HMAC, the handshake, the serializers, batches and item streams are
//! the Rust daemon's, on a shared multi-thread tokio runtime. Each registered Python
//! object is a [`Dispatch`] ([`PyDispatch`]) whose calls become jobs on the daemon's
//! [`Pool`]: the pool thread takes the GIL, converts the arguments, runs the Python
//! side of Pyro4's `handleRequest` (`pyro_rs.core._dispatch`: instance modes, call
//! context, exposure checks, the method itself), converts the result and replies to
//! the connection task over a oneshot channel. Python never runs on a tokio worker.

use crate::convert::{self, ToValue};
use crate::errors;
use crate::lanes::{self, Lanes};
use crate::pool::Pool;
use crate::serpent;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyString, PyTuple};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use pyro_runtime::daemon::{
    CallContext, CallFuture, ClientAddr, Dispatch, Fault, Metadata, Outcome, RequestToken,
};
use pyro_runtime::nameserver::BroadcastStatus;
use pyro_runtime::{
    Config, Daemon, DaemonBuilder, DaemonHandle, Error, NameServerDaemon, NameServerOptions,
    StorageSpec,
};
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The tokio runtime every Python daemon shares (IO only; two workers are plenty when
/// Python runs elsewhere).
fn runtime() -> PyResult<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pyro-rs-io")
        .enable_all()
        .build()
        .map_err(|e| PyValueError::new_err(format!("cannot start the runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One serializer's Python hooks (`pyro_rs.util.SerializerBase` subclasses): unknown
/// objects out (with autoproxy), class dicts in.
struct Serializer {
    replace: Py<PyAny>,
    dict_to_class: Py<PyAny>,
    subclass_as_base: bool,
}

/// What the Python side of a call produced.
enum PyOutcome {
    Value(Value),
    Iter(Arc<Py<PyAny>>),
}

/// The Python hooks a daemon gets besides `_dispatch`: `(_exception_parts,
/// _failure_parts, current_context, _stream_check, custom annotations)`.
type Hooks = (Py<PyAny>, Py<PyAny>, Py<PyAny>, Py<PyAny>, bool);

/// State shared by a daemon's dispatchers: the lanes and the pool, the Python entry
/// points and the connections seen (to report disconnects).
struct Core {
    /// The threads connections run on (see [`crate::lanes`]).
    lanes: Arc<Lanes>,
    /// Python work that does not come from a lane (oneway calls with ONEWAY_THREADED,
    /// name server daemons).
    pool: Arc<Pool>,
    /// `pyro_rs.core._dispatch(daemon_ref, entry, kind, name, args, kwargs, ctx)`.
    dispatch: Py<PyAny>,
    /// `pyro_rs.core._exception_parts(exc)`: `(class, args, attributes, tb, text)`.
    exc_parts: Py<PyAny>,
    /// `pyro_rs.core._failure_parts(obj, name, exc)`: `_exception_parts` plus Pyro4's
    /// logging of a failed `@callback`.
    failure_parts: Py<PyAny>,
    /// `pyro_rs.core.current_context` (a `threading.local`); a call sets its `_call`.
    current_context: Py<PyAny>,
    /// `pyro_rs.core._stream_check(value)`: refuses lazy dict views as iterators.
    stream_check: Py<PyAny>,
    /// The Daemon overrides `annotations()`: replies ask Python for them.
    custom_annotations: bool,
    /// ONEWAY_THREADED: oneway calls go to the pool so the connection reads on.
    oneway_threaded: bool,
    /// A weak reference to the Python Daemon (no cycle through Rust).
    daemon_ref: Py<PyAny>,
    serializers: HashMap<u16, Serializer>,
    /// The serializer used where no request names one (handshake data).
    default_ser: u16,
    conns: Mutex<HashMap<u64, Weak<dyn Any + Send + Sync>>>,
}

thread_local! {
    /// The connection a lane thread last reported to [`Core::track`].
    static LAST_TRACKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The request whose state this thread's `current_context._call` holds, so the
    /// calls of one batch share one state, as they share one request in Pyro4.
    static LAST_STATE: std::cell::RefCell<Option<(RequestToken, Py<CallState>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Status codes of `_dispatch` results.
const ST_VALUE: i64 = 0;
const ST_ITER: i64 = 1;
const ST_EXC: i64 = 2;

fn client_addr_py<'py>(py: Python<'py>, addr: &ClientAddr) -> PyResult<Bound<'py, PyAny>> {
    Ok(match addr {
        ClientAddr::Tcp(a) => (a.ip().to_string(), a.port()).into_pyobject(py)?.into_any(),
        ClientAddr::Unix(p) => PyString::new(py, p.as_deref().unwrap_or("")).into_any(),
    })
}

impl Core {
    fn ser(&self, id: u16) -> Option<&Serializer> {
        self.serializers
            .get(&id)
            .or_else(|| self.serializers.get(&self.default_ser))
    }

    fn track(&self, ctx: &CallContext) {
        // A lane serves few connections: skip the map when this one was seen last.
        let id = ctx.connection_id();
        if lanes::on_lane() && LAST_TRACKED.with(|c| c.replace(id)) == id {
            return;
        }
        let mut conns = lock(&self.conns);
        conns
            .entry(ctx.connection_id())
            .or_insert_with(|| ctx.connection_token());
    }

    fn call_state(&self, py: Python<'_>, ctx: &CallContext) -> CallState {
        CallState {
            conn_id: ctx.connection_id(),
            addr: ctx.client_addr().clone(),
            seq: ctx.seq(),
            msg_flags: ctx.msg_flags(),
            serializer_id: ctx.serializer_id(),
            annotations: ctx
                .annotations()
                .iter()
                .map(|(k, v)| (*k, v.to_vec()))
                .collect(),
            correlation: *ctx.correlation_id().as_bytes(),
            daemon_ref: self.daemon_ref.clone_ref(py),
            values: OnceLock::new(),
        }
    }

    /// `current_context._call` for this request: the one already set when this thread
    /// is still on the same request (a batch), else a new one.
    fn current_state<'py>(
        &self,
        py: Python<'py>,
        ctx: &CallContext,
    ) -> PyResult<Bound<'py, CallState>> {
        let token = ctx.request_token();
        let reused = LAST_STATE.with(|last| match &*last.borrow() {
            Some((t, state)) if *t == token => Some(state.bind(py).clone()),
            _ => None,
        });
        if let Some(state) = reused {
            return Ok(state);
        }
        let state = Bound::new(py, self.call_state(py, ctx))?;
        self.current_context
            .bind(py)
            .setattr(intern!(py, "_call"), &state)?;
        LAST_STATE.with(|last| *last.borrow_mut() = Some((token, state.clone().unbind())));
        Ok(state)
    }

    /// Run Python work here when on a lane (inline, GIL taken for it), else on the
    /// pool (waiting for it). None when the pool is closed.
    fn run_py<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Python<'_>) -> T + Send + 'static,
    {
        if lanes::on_lane() {
            Some(Python::attach(f))
        } else {
            self.pool.run_sync(f)
        }
    }

    /// The response annotations a call left: `current_context.response_annotations`
    /// set during the call, plus the Daemon's `annotations()` when it overrides them.
    fn collect_annotations(&self, py: Python<'_>, ctx: &CallContext, state: &CallState) {
        let set = |k: Bound<'_, PyAny>, v: Bound<'_, PyAny>| {
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<Vec<u8>>()) else {
                return;
            };
            if k == "CORR" {
                return;
            }
            if let Ok(key) = <[u8; 4]>::try_from(k.as_bytes()) {
                ctx.set_response_annotation(key, v);
            }
        };
        if let Some(values) = state.values.get() {
            if let Ok(Some(ann)) = values
                .bind(py)
                .get_item(intern!(py, "response_annotations"))
            {
                if let Ok(ann) = ann.cast::<PyDict>() {
                    for (k, v) in ann.iter() {
                        set(k, v);
                    }
                }
            }
        }
        if self.custom_annotations {
            let extra = self
                .daemon_ref
                .bind(py)
                .call0()
                .and_then(|d| d.call_method0(intern!(py, "annotations")));
            if let Ok(extra) = extra {
                if let Ok(extra) = extra.cast::<PyDict>() {
                    for (k, v) in extra.iter() {
                        set(k, v);
                    }
                }
            }
        }
    }

    /// A Python exception as a [`Fault`], through `_exception_parts`.
    fn fault_from_err(&self, py: Python<'_>, err: PyErr, ser: Option<&Serializer>) -> Fault {
        match self.exc_parts.bind(py).call1((err.into_value(py),)) {
            Ok(parts) => self.fault_from_parts(py, &parts, ser),
            Err(e) => Fault::pyro("PyroError", format!("cannot report an exception: {e}")),
        }
    }

    /// `(class, args, attributes, traceback lines, "type: text")` as a [`Fault`]. If the
    /// args or attributes cannot be serialized, Pyro4 sends a PyroError instead.
    fn fault_from_parts(
        &self,
        py: Python<'_>,
        parts: &Bound<'_, PyAny>,
        ser: Option<&Serializer>,
    ) -> Fault {
        type Parts<'py> = (
            String,
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Vec<String>,
            String,
        );
        let (class_name, args, attrs, tb, text): Parts<'_> = match parts.extract() {
            Ok(p) => p,
            Err(e) => return Fault::pyro("PyroError", format!("bad exception report: {e}")),
        };
        let hook = ser.map(|s| s.replace.bind(py).clone());
        let conv = ToValue {
            hook: hook.as_ref(),
            subclass_as_base: ser.is_some_and(|s| s.subclass_as_base),
        };
        let converted = (|| -> PyResult<(Vec<Value>, Dict)> {
            let args = match conv.convert(&args, 0)? {
                Value::Tuple(v) | Value::List(v) => v,
                other => vec![other],
            };
            let mut attributes = match conv.convert(&attrs, 0)? {
                Value::Dict(d) => d,
                _ => Dict::new(),
            };
            attributes.remove_str("_pyroTraceback");
            Ok((args, attributes))
        })();
        match converted {
            Ok((args, attributes)) => Fault {
                class_name,
                args,
                attributes,
                traceback: Some(tb),
            },
            Err(e) => Fault::pyro(
                "PyroError",
                format!(
                    "Error serializing exception: {}. Original exception: {text}",
                    e.value(py)
                ),
            )
            .with_traceback(tb),
        }
    }

    /// A method's result as a value, converted with the serializer's hooks; a result
    /// that cannot be serialized becomes the fault Pyro4 sends.
    fn result_value(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        ser: Option<&Serializer>,
    ) -> Result<PyOutcome, Fault> {
        let hook = ser.map(|s| s.replace.bind(py).clone());
        let conv = ToValue {
            hook: hook.as_ref(),
            subclass_as_base: ser.is_some_and(|s| s.subclass_as_base),
        };
        conv.convert(value, 0)
            .map(PyOutcome::Value)
            .map_err(|e| self.fault_from_err(py, e, ser))
    }

    /// Run one piece of Python work (on a pool thread, GIL held).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        entry: &Py<PyAny>,
        kind: &str,
        name: &str,
        args: Vec<Value>,
        kwargs: Dict,
        ctx: Option<&CallContext>,
        ser_id: u16,
    ) -> Result<PyOutcome, Fault> {
        let ser = self.ser(ser_id);
        let d2c = ser.map(|s| s.dict_to_class.bind(py).clone());
        let prepared = (|| -> PyResult<_> {
            let items = args
                .into_iter()
                .map(|v| convert::to_py(py, &v, d2c.as_ref()))
                .collect::<PyResult<Vec<_>>>()?;
            let py_args = PyTuple::new(py, items)?;
            let py_kwargs = convert::to_py(py, &Value::Dict(kwargs), d2c.as_ref())?;
            let ctx = match ctx {
                Some(c) => self.current_state(py, c)?.into_any(),
                None => py.None().into_bound(py),
            };
            Ok((py_args, py_kwargs, ctx))
        })();
        let (py_args, py_kwargs, py_ctx) = match prepared {
            Ok(p) => p,
            Err(e) => return Err(self.fault_from_err(py, e, ser)),
        };
        let result = self.dispatch.bind(py).call1((
            self.daemon_ref.bind(py),
            entry.bind(py),
            kind,
            name,
            py_args,
            py_kwargs,
            py_ctx,
        ));
        let result = match result {
            Ok(r) => r,
            Err(e) => return Err(self.fault_from_err(py, e, ser)),
        };
        let parsed = result.extract::<(i64, Bound<'_, PyAny>, Bound<'_, PyAny>)>();
        let (status, value, annotations) = match parsed {
            Ok(p) => p,
            Err(e) => return Err(self.fault_from_err(py, e, ser)),
        };
        if let (Some(ctx), Ok(ann)) = (ctx, annotations.cast::<PyDict>()) {
            for (k, v) in ann.iter() {
                let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<Vec<u8>>()) else {
                    continue;
                };
                if let Ok(key) = <[u8; 4]>::try_from(k.as_bytes()) {
                    ctx.set_response_annotation(key, v);
                }
            }
        }
        match status {
            ST_VALUE => self.result_value(py, &value, ser),
            ST_ITER => Ok(PyOutcome::Iter(Arc::new(value.unbind()))),
            ST_EXC => Err(self.fault_from_parts(py, &value, ser)),
            other => Err(Fault::pyro(
                "PyroError",
                format!("bad dispatch status {other}"),
            )),
        }
    }
}

/// What `current_context` shows of the call a thread is running (its `_call`): the
/// facts of the request, read when asked for, and the values the call's code set.
#[pyclass(module = "pyro_rs._native", name = "CallState", frozen)]
pub(crate) struct CallState {
    // The facts only: holding the CallContext would keep the connection alive, and a
    // state outlives its call (it stays in current_context until the next one).
    conn_id: u64,
    addr: ClientAddr,
    seq: u16,
    msg_flags: u16,
    serializer_id: u16,
    annotations: Vec<([u8; 4], Vec<u8>)>,
    correlation: [u8; 16],
    daemon_ref: Py<PyAny>,
    values: OnceLock<Py<PyDict>>,
}

#[pymethods]
impl CallState {
    /// The connection's id in this daemon.
    #[getter]
    fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// `(host, port)` of the client, or the socket path text.
    #[getter]
    fn client_sock_addr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        client_addr_py(py, &self.addr)
    }

    #[getter]
    fn seq(&self) -> u16 {
        self.seq
    }

    #[getter]
    fn msg_flags(&self) -> u16 {
        self.msg_flags
    }

    #[getter]
    fn serializer_id(&self) -> u16 {
        self.serializer_id
    }

    /// The request's annotations, `{4-char str: bytes}` (a new dict each time).
    #[getter]
    fn annotations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ann = PyDict::new(py);
        for (k, v) in &self.annotations {
            ann.set_item(
                PyString::new(py, &String::from_utf8_lossy(k)),
                PyBytes::new(py, v),
            )?;
        }
        Ok(ann)
    }

    /// The correlation id's 16 bytes.
    #[getter]
    fn correlation_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.correlation)
    }

    /// A weak reference to the Python Daemon.
    #[getter]
    fn daemon_ref(&self, py: Python<'_>) -> Py<PyAny> {
        self.daemon_ref.clone_ref(py)
    }

    /// The `current_context` values of this call: computed ones, and what the call set.
    fn values<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        self.values
            .get_or_init(|| PyDict::new(py).unbind())
            .bind(py)
            .clone()
    }
}

/// True on a thread a daemon runs connections on (Python methods called remotely run
/// there).
#[pyfunction]
pub(crate) fn in_daemon_thread() -> bool {
    lanes::on_lane()
}

/// A remote iterator over a Python iterator: each item is produced on a pool thread.
struct PyItems {
    core: Arc<Core>,
    iter: Arc<Py<PyAny>>,
    ser_id: u16,
}

impl Iterator for PyItems {
    type Item = Result<Value, Fault>;

    fn next(&mut self) -> Option<Self::Item> {
        let core = self.core.clone();
        let iter = self.iter.clone();
        let ser_id = self.ser_id;
        let r = self.core.run_py(move |py| {
            core.run(py, &iter, "next", "", Vec::new(), Dict::new(), None, ser_id)
        });
        match r {
            Some(Ok(PyOutcome::Value(v))) => Some(Ok(v)),
            Some(Ok(PyOutcome::Iter(_))) => Some(Err(Fault::pyro(
                "PyroError",
                "iterator produced an iterator",
            ))),
            Some(Err(f)) => Some(Err(f)),
            None => Some(Err(closed_fault())),
        }
    }
}

fn closed_fault() -> Fault {
    Fault::pyro("DaemonError", "daemon is closed")
}

/// A registered Python object or class.
struct PyDispatch {
    core: Arc<Core>,
    entry: Arc<Py<PyAny>>,
    type_name: String,
    meta: Metadata,
    methods: HashSet<String>,
    known: HashSet<String>,
    require_expose: bool,
    /// A registered class (instance_mode session/percall/single): calls go through
    /// Python's `_dispatch`, which picks the instance.
    is_class: bool,
}

impl PyDispatch {
    /// A call of an exposed method of a registered instance, done here rather than by
    /// Python's `_dispatch`: set `current_context`, look the method up, call it, and
    /// convert the result; Pyro4's rules for failures and iterators are the same.
    fn call_direct(
        &self,
        py: Python<'_>,
        ctx: &CallContext,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<Outcome, Fault> {
        let core = &self.core;
        let ser = core.ser(ctx.serializer_id());
        let d2c = ser.map(|s| s.dict_to_class.bind(py).clone());
        let prepared = (|| -> PyResult<_> {
            let mut items = Vec::with_capacity(args.len());
            // Each value goes as soon as it is converted: a large argument is not held
            // twice while the method runs.
            for v in args {
                items.push(convert::to_py(py, &v, d2c.as_ref())?);
            }
            let py_args = PyTuple::new(py, items)?;
            let py_kwargs = if kwargs.is_empty() {
                None
            } else {
                let d = convert::to_py(py, &Value::Dict(kwargs), d2c.as_ref())?;
                Some(d.cast_into::<PyDict>()?)
            };
            Ok((py_args, py_kwargs))
        })();
        match prepared {
            Ok((py_args, py_kwargs)) => self.call_with(py, ctx, method, py_args, py_kwargs),
            Err(e) => Err(core.fault_from_err(py, e, ser)),
        }
    }

    /// An exposed method of the instance called with Python arguments; a builtin result
    /// of a plain serpent call comes back as serpent text.
    fn call_with(
        &self,
        py: Python<'_>,
        ctx: &CallContext,
        method: &str,
        py_args: Bound<'_, PyTuple>,
        py_kwargs: Option<Bound<'_, PyDict>>,
    ) -> Result<Outcome, Fault> {
        let core = &self.core;
        let ser = core.ser(ctx.serializer_id());
        let obj = self.entry.bind(py);
        let state_obj = match core.current_state(py, ctx) {
            Ok(s) => s,
            Err(e) => return Err(core.fault_from_err(py, e, ser)),
        };
        let result = obj
            .getattr(method)
            .and_then(|m| m.call(py_args, py_kwargs.as_ref()));
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                let parts = core
                    .failure_parts
                    .bind(py)
                    .call1((obj, method, e.into_value(py)));
                return Err(match parts {
                    Ok(p) => core.fault_from_parts(py, &p, ser),
                    Err(e2) => core.fault_from_err(py, e2, ser),
                });
            }
        };
        core.collect_annotations(py, ctx, state_obj.get());
        let oneway = ctx.msg_flags() & pyro_wire::FLAGS_ONEWAY != 0;
        if !oneway && value.is_instance_of::<PyIterator>() {
            if let Err(e) = core.stream_check.bind(py).call1((&value,)) {
                return Err(core.fault_from_err(py, e, ser));
            }
            return Ok(self.outcome(PyOutcome::Iter(Arc::new(value.unbind())), ctx));
        }
        // A plain serpent call's result made of builtins is written as serpent text here,
        // without the value tree (inside a batch the results form one list: value path).
        if ctx.serializer_id() == SerializerKind::Serpent.id()
            && ctx.msg_flags() & pyro_wire::FLAGS_BATCH == 0
        {
            if let Some(payload) = serpent::write_result(&value, ctx) {
                return Ok(Outcome::Encoded(payload));
            }
        }
        core.result_value(py, &value, ser)
            .map(|o| self.outcome(o, ctx))
    }

    fn outcome(&self, o: PyOutcome, ctx: &CallContext) -> Outcome {
        match o {
            PyOutcome::Value(v) => Outcome::Value(v),
            PyOutcome::Iter(iter) => Outcome::Stream(Box::new(PyItems {
                core: self.core.clone(),
                iter,
                ser_id: ctx.serializer_id(),
            })),
        }
    }

    /// The call as Python work: direct for an exposed method of an instance, else
    /// through `_dispatch`.
    fn run_call(
        &self,
        py: Python<'_>,
        ctx: &CallContext,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<Outcome, Fault> {
        if !self.is_class && self.methods.contains(method) {
            return self.call_direct(py, ctx, method, args, kwargs);
        }
        let ser = ctx.serializer_id();
        self.core
            .run(
                py,
                &self.entry,
                "call",
                method,
                args,
                kwargs,
                Some(ctx),
                ser,
            )
            .map(|o| self.outcome(o, ctx))
    }

    fn run_sync(
        &self,
        ctx: &CallContext,
        kind: &'static str,
        name: &str,
        args: Vec<Value>,
    ) -> Result<Value, Fault> {
        self.core.track(ctx);
        let core = self.core.clone();
        let entry = self.entry.clone();
        let name = name.to_string();
        let ctx = ctx.clone();
        let r = self.core.run_py(move |py| {
            let ser = ctx.serializer_id();
            core.run(py, &entry, kind, &name, args, Dict::new(), Some(&ctx), ser)
        });
        match r {
            Some(Ok(PyOutcome::Value(v))) => Ok(v),
            Some(Ok(PyOutcome::Iter(_))) => Err(Fault::pyro(
                "PyroError",
                "an attribute cannot be an iterator",
            )),
            Some(Err(f)) => Err(f),
            None => Err(closed_fault()),
        }
    }
}

/// A registered Python object as the Rust daemon sees it.
struct PyObjectDispatch(Arc<PyDispatch>);

impl Dispatch for PyObjectDispatch {
    fn type_name(&self) -> &str {
        &self.0.type_name
    }

    fn metadata(&self) -> Metadata {
        self.0.meta.clone()
    }

    /// Pyro4's `getAttribute` texts: a name the object has but does not expose is
    /// "unexposed"; one it lacks is Python's own AttributeError. With REQUIRE_EXPOSE
    /// off, any public name goes to Python, which looks it up on the instance.
    fn check_method(&self, method: &str) -> Result<(), Fault> {
        let this = &self.0;
        if this.methods.contains(method) || !this.require_expose {
            return Ok(());
        }
        if this.known.contains(method) {
            Err(Fault::attribute_error(format!(
                "attempt to access unexposed attribute '{method}'"
            )))
        } else {
            Err(Fault::attribute_error(format!(
                "'{}' object has no attribute '{method}'",
                this.type_name
            )))
        }
    }

    fn call(&self, ctx: CallContext, method: &str, args: Vec<Value>, kwargs: Dict) -> CallFuture {
        let this = &self.0;
        this.core.track(&ctx);
        let oneway = ctx.msg_flags() & pyro_wire::FLAGS_ONEWAY != 0;
        if oneway && this.core.oneway_threaded {
            // ONEWAY_THREADED: the call runs on a pool thread while the connection reads
            // on; nobody waits for it, so a failure is only logged.
            let d = this.clone();
            let method = method.to_string();
            let submitted = this.core.pool.submit_oneway(Box::new(move |py| {
                if let Err(f) = d.run_call(py, &ctx, &method, args, kwargs) {
                    tracing::debug!("oneway call {method} failed: {f}");
                }
            }));
            return CallFuture::Ready(if submitted {
                Ok(Outcome::Value(Value::None))
            } else {
                Err(closed_fault())
            });
        }
        if lanes::on_lane() {
            // The connection's own thread: run it here, no hand-off.
            let r = Python::attach(|py| this.run_call(py, &ctx, method, args, kwargs));
            return CallFuture::Ready(r);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let d = this.clone();
        let method = method.to_string();
        let submitted = this.core.pool.submit(Box::new(move |py| {
            let _ = tx.send(d.run_call(py, &ctx, &method, args, kwargs));
        }));
        if !submitted {
            return CallFuture::Ready(Err(closed_fault()));
        }
        CallFuture::Pending(Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(Fault::pyro(
                    "PyroError",
                    "the daemon worker thread failed to run the call",
                ))
            })
        }))
    }

    fn decodes_serpent(&self) -> bool {
        true
    }

    /// An exposed method of an instance, called on the connection's own lane: the
    /// arguments are parsed from the serpent text straight into Python objects (with
    /// Pyro4's `recreate_classes` over them), skipping the value tree. Anything else, or
    /// a payload this parse does not take as a call, goes the value path.
    fn call_serpent(
        &self,
        ctx: &CallContext,
        method: &str,
        payload: &[u8],
        limits: &DecodeLimits,
    ) -> Option<CallFuture> {
        let this = &self.0;
        if this.is_class || !this.methods.contains(method) || !lanes::on_lane() {
            return None;
        }
        if ctx.msg_flags() & pyro_wire::FLAGS_ONEWAY != 0 && this.core.oneway_threaded {
            return None;
        }
        Python::attach(|py| {
            let d2c = this.core.ser(ctx.serializer_id())?.dict_to_class.bind(py);
            let (args, kwargs) = serpent::parse_call(py, payload, limits, method, d2c)?;
            this.core.track(ctx);
            Some(CallFuture::Ready(
                this.call_with(py, ctx, method, args, kwargs),
            ))
        })
    }

    fn get_attr(&self, ctx: &CallContext, name: &str) -> Result<Value, Fault> {
        self.0.run_sync(ctx, "get", name, Vec::new())
    }

    fn set_attr(&self, ctx: &CallContext, name: &str, value: Value) -> Result<Value, Fault> {
        self.0.run_sync(ctx, "set", name, vec![value])
    }
}

/// How the daemon was bound, to bind it again (a new HMAC key before serving).
#[derive(Clone)]
struct Settings {
    config: Arc<Config>,
    host: String,
    port: u16,
    unixsocket: Option<String>,
    nat: Option<(String, u16)>,
    hmac_key: Option<Vec<u8>>,
    validate: bool,
}

/// A bound daemon: a plain one, or a name server (its daemon, storage and broadcast
/// responder).
enum Served {
    Plain(Daemon),
    NameServer(Box<NameServerDaemon>),
}

/// What Python shows of a name server: `(uri, internal uri, startup lines, broadcast
/// location or None)`.
type NsInfo = (String, String, Vec<String>, Option<String>);

struct Inner {
    /// Bound and not yet serving (taken by `start`).
    daemon: Option<Served>,
    handle: DaemonHandle,
    started: bool,
    closed: bool,
    settings: Settings,
    ns_info: Option<NsInfo>,
}

type Done = Arc<(Mutex<bool>, Condvar)>;

/// The Rust daemon behind a Python `pyro_rs.core.Daemon`.
#[pyclass(module = "pyro_rs._native", name = "NativeDaemon")]
pub(crate) struct NativeDaemon {
    inner: Mutex<Inner>,
    core: Arc<Core>,
    done: Done,
}

fn daemon_err(py: Python<'_>, e: impl std::fmt::Display) -> PyErr {
    let none = py.None().into_bound(py);
    errors::to_pyerr(py, Error::Daemon(e.to_string()), &none)
}

fn bind(core: &Arc<Core>, s: &Settings) -> Result<Daemon, String> {
    let mut b = DaemonBuilder::with_config(s.config.clone())
        .hmac_key(s.hmac_key.as_deref())
        .host(&s.host)
        .port(s.port);
    if let Some(path) = &s.unixsocket {
        b = b.unix_socket(path);
    }
    if let Some((h, p)) = &s.nat {
        b = b.nat(h, *p);
    }
    let lanes = core.lanes.clone();
    b = b.connection_executor(move |conn| lanes.assign(conn));
    if s.validate {
        let core = core.clone();
        // Pyro4's overridable `validateHandshake(conn, data)`: its return value is the
        // handshake response, an exception refuses the connection with str(exception).
        b = b.handshake_validator(move |addr, data| {
            let c = core.clone();
            let addr = addr.clone();
            let data = data.clone();
            let r = core.run_py(move |py| {
                let addr_py = match client_addr_py(py, &addr) {
                    Ok(a) => a,
                    Err(e) => return Err(c.fault_from_err(py, e, None)),
                };
                let entry = addr_py.unbind();
                c.run(
                    py,
                    &entry,
                    "handshake",
                    "",
                    vec![data],
                    Dict::new(),
                    None,
                    c.default_ser,
                )
            });
            match r {
                Some(Ok(PyOutcome::Value(v))) => Ok(v),
                Some(Ok(PyOutcome::Iter(_))) => Err(Fault::pyro(
                    "PyroError",
                    "handshake response is an iterator",
                )),
                Some(Err(f)) => Err(f),
                None => Err(closed_fault()),
            }
        });
    }
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(b.bind()).map_err(|e| e.to_string())
}

fn make_config(py: Python<'_>, items: &[(String, String)]) -> PyResult<Config> {
    let mut cfg = Config::default();
    for (k, v) in items {
        cfg.set(k, v).map_err(|e| daemon_err(py, e))?;
    }
    Ok(cfg)
}

fn make_core(
    serializers: HashMap<u16, (Py<PyAny>, Py<PyAny>, bool)>,
    dispatch: Py<PyAny>,
    hooks: Hooks,
    daemon_ref: Py<PyAny>,
    pool_size: usize,
    config: &Config,
) -> Arc<Core> {
    let (exc_parts, failure_parts, current_context, stream_check, custom_annotations) = hooks;
    let default_ser = [1u16, 2, 3]
        .into_iter()
        .find(|id| serializers.contains_key(id))
        .or_else(|| serializers.keys().next().copied())
        .unwrap_or(1);
    let serializers = serializers
        .into_iter()
        .map(|(id, (replace, dict_to_class, subclass_as_base))| {
            (
                id,
                Serializer {
                    replace,
                    dict_to_class,
                    subclass_as_base,
                },
            )
        })
        .collect();
    Arc::new(Core {
        lanes: Lanes::new(pool_size, "Pyro-Conn"),
        pool: Pool::new(pool_size, "Pyro-Worker"),
        dispatch,
        exc_parts,
        failure_parts,
        current_context,
        stream_check,
        custom_annotations,
        oneway_threaded: config.oneway_threaded,
        daemon_ref,
        serializers,
        default_ser,
        conns: Mutex::new(HashMap::new()),
    })
}

impl NativeDaemon {
    fn assemble(
        served: Served,
        core: Arc<Core>,
        settings: Settings,
        ns_info: Option<NsInfo>,
    ) -> NativeDaemon {
        let handle = match &served {
            Served::Plain(d) => d.handle(),
            Served::NameServer(ns) => ns.handle(),
        };
        NativeDaemon {
            inner: Mutex::new(Inner {
                daemon: Some(served),
                handle,
                started: false,
                closed: false,
                settings,
                ns_info,
            }),
            core,
            done: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }
}

#[pymethods]
impl NativeDaemon {
    /// Bind a daemon. `serializers` maps serializer ids to `(replace, dict_to_class,
    /// subclass_as_base)`; `dispatch`, `exc_parts` and `daemon_ref` are the Python entry
    /// points (see the module doc); `pool_size` is the number of Python worker threads.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, port, unixsocket, nathost, natport, hmac_key, config, serializers,
                        dispatch, hooks, daemon_ref, validate, pool_size))]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        unixsocket: Option<String>,
        nathost: Option<String>,
        natport: Option<u16>,
        hmac_key: Option<Vec<u8>>,
        config: Vec<(String, String)>,
        serializers: HashMap<u16, (Py<PyAny>, Py<PyAny>, bool)>,
        dispatch: Py<PyAny>,
        hooks: Hooks,
        daemon_ref: Py<PyAny>,
        validate: bool,
        pool_size: usize,
    ) -> PyResult<Self> {
        let cfg = make_config(py, &config)?;
        let core = make_core(serializers, dispatch, hooks, daemon_ref, pool_size, &cfg);
        let settings = Settings {
            config: Arc::new(cfg),
            host,
            port,
            unixsocket,
            nat: nathost.map(|h| (h, natport.unwrap_or(0))),
            hmac_key: hmac_key.filter(|k| !k.is_empty()),
            validate,
        };
        let c = core.clone();
        let s = settings.clone();
        let daemon = py.detach(move || bind(&c, &s)).map_err(|e| {
            errors::to_pyerr(py, Error::Communication(e), &py.None().into_bound(py))
        })?;
        Ok(NativeDaemon::assemble(
            Served::Plain(daemon),
            core,
            settings,
            None,
        ))
    }

    /// Start a name server (Pyro4's `startNS`): the Rust `NameServerDaemon` with its
    /// storage (`memory` or `sql:FILE`) and broadcast responder, on which Python objects
    /// can be registered as on any daemon.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, port, enable_broadcast, bchost, bcport, unixsocket, nathost, natport,
                        storage, hmac_key, config, serializers, dispatch, hooks, daemon_ref,
                        pool_size))]
    fn nameserver(
        py: Python<'_>,
        host: Option<String>,
        port: Option<u16>,
        enable_broadcast: bool,
        bchost: Option<String>,
        bcport: Option<u16>,
        unixsocket: Option<String>,
        nathost: Option<String>,
        natport: Option<u16>,
        storage: Option<String>,
        hmac_key: Option<Vec<u8>>,
        config: Vec<(String, String)>,
        serializers: HashMap<u16, (Py<PyAny>, Py<PyAny>, bool)>,
        dispatch: Py<PyAny>,
        hooks: Hooks,
        daemon_ref: Py<PyAny>,
        pool_size: usize,
    ) -> PyResult<Self> {
        let cfg = Arc::new(make_config(py, &config)?);
        let storage: StorageSpec = storage.as_deref().unwrap_or("memory").parse().map_err(
            |e: pyro_runtime::nameserver::NameServerError| {
                pyo3::exceptions::PyValueError::new_err(e.to_string())
            },
        )?;
        let hmac_key = hmac_key.filter(|k| !k.is_empty());
        let mut opts = NameServerOptions::new(cfg.clone());
        opts.host = host.clone();
        opts.port = port;
        opts.unixsocket = unixsocket.clone();
        opts.nathost = nathost.clone();
        opts.natport = natport;
        opts.storage = storage;
        opts.hmac_key = hmac_key.clone();
        opts.enable_broadcast = enable_broadcast;
        opts.bchost = bchost;
        opts.bcport = bcport;
        let started = py.detach(move || -> Result<(NameServerDaemon, Vec<String>), String> {
            let rt = runtime().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let ns = NameServerDaemon::start(opts)
                    .await
                    .map_err(|e| e.to_string())?;
                let lines = ns.startup_lines().await;
                Ok((ns, lines))
            })
        });
        let (ns, lines) = started.map_err(|e| {
            errors::to_pyerr(py, Error::Communication(e), &py.None().into_bound(py))
        })?;
        let bc = match ns.broadcast_status() {
            BroadcastStatus::Running(loc) => Some(loc.clone()),
            _ => None,
        };
        let info = (
            ns.uri().to_string(),
            ns.internal_uri().to_string(),
            lines,
            bc,
        );
        let core = make_core(serializers, dispatch, hooks, daemon_ref, pool_size, &cfg);
        let settings = Settings {
            config: cfg.clone(),
            host: host.unwrap_or_else(|| cfg.host.clone()),
            port: port.unwrap_or(cfg.ns_port),
            unixsocket,
            nat: nathost.map(|h| (h, natport.unwrap_or(0))),
            hmac_key,
            validate: false,
        };
        Ok(NativeDaemon::assemble(
            Served::NameServer(Box::new(ns)),
            core,
            settings,
            Some(info),
        ))
    }

    /// For a name server: `(uri, internal uri, startup lines, broadcast location)`.
    fn ns_info(&self) -> Option<NsInfo> {
        lock(&self.inner).ns_info.clone()
    }

    /// Pyro4's `locationStr`: `host:port`, `[ipv6]:port` or `./u:path`.
    fn location_str(&self) -> String {
        lock(&self.inner).handle.location_str().to_string()
    }

    /// The URI text for an object id, with the NAT location unless `nat` is false.
    fn uri_for(&self, id: &str, nat: bool) -> String {
        let inner = lock(&self.inner);
        if nat {
            inner.handle.uri_for(id).to_string()
        } else {
            inner.handle.uri_for_internal(id).to_string()
        }
    }

    /// Register a Python object or class under `id`, with its exposed members and the
    /// names it has at all (for Pyro4's error texts). Returns the URI text.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (id, entry, type_name, methods, oneway, attrs, known, require_expose, force,
                        is_class))]
    fn register(
        &self,
        py: Python<'_>,
        id: &str,
        entry: Py<PyAny>,
        type_name: String,
        methods: Vec<String>,
        oneway: Vec<String>,
        attrs: Vec<String>,
        known: Vec<String>,
        require_expose: bool,
        force: bool,
        is_class: bool,
    ) -> PyResult<String> {
        let obj = PyDispatch {
            core: self.core.clone(),
            entry: Arc::new(entry),
            type_name,
            methods: methods.iter().cloned().collect(),
            meta: Metadata {
                methods,
                oneway,
                attrs,
            },
            known: known.into_iter().collect(),
            require_expose,
            is_class,
        };
        let inner = lock(&self.inner);
        inner
            .handle
            .register(PyObjectDispatch(Arc::new(obj)), Some(id), force)
            .map(|u| u.to_string())
            .map_err(|e| daemon_err(py, e))
    }

    /// Remove an object (unknown ids are ignored).
    fn unregister(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        lock(&self.inner)
            .handle
            .unregister(id)
            .map_err(|e| daemon_err(py, e))
    }

    /// Set the HMAC key. The key is part of the bound daemon, so before serving it is
    /// bound again on the same address with the new key (registrations kept); a
    /// serving daemon cannot change it.
    fn set_hmac_key(&self, py: Python<'_>, key: Option<Vec<u8>>) -> PyResult<()> {
        let key = key.filter(|k| !k.is_empty());
        let mut inner = lock(&self.inner);
        if inner.settings.hmac_key == key {
            return Ok(());
        }
        if inner.started || inner.closed {
            return Err(daemon_err(
                py,
                "the HMAC key of a daemon must be set before its request loop starts",
            ));
        }
        let old = match inner.daemon.take() {
            Some(Served::Plain(d)) => d,
            Some(ns @ Served::NameServer(_)) => {
                inner.daemon = Some(ns);
                return Err(daemon_err(
                    py,
                    "the HMAC key of a name server is given to startNS",
                ));
            }
            None => return Err(daemon_err(py, "daemon is closed")),
        };
        let objects: Vec<(String, Arc<dyn Dispatch>)> = old
            .registered()
            .into_iter()
            .filter(|id| id != pyro_wire::DAEMON_NAME)
            .filter_map(|id| old.object(&id).map(|o| (id, o)))
            .collect();
        let mut settings = inner.settings.clone();
        settings.hmac_key = key;
        // Same address: the bound port, not port 0 again.
        if let Some(pyro_wire::Location::Tcp { port, .. }) = old.uri_for_internal("x").location {
            settings.port = port;
        }
        let core = self.core.clone();
        let s = settings.clone();
        let rebound = py.detach(move || {
            drop(old);
            bind(&core, &s)
        });
        let daemon = rebound.map_err(|e| daemon_err(py, e))?;
        for (id, obj) in objects {
            daemon
                .register_arc(obj, Some(&id), true)
                .map_err(|e| daemon_err(py, e))?;
        }
        inner.handle = daemon.handle();
        inner.daemon = Some(Served::Plain(daemon));
        inner.settings = settings;
        Ok(())
    }

    /// Start serving in the background (once). Later calls do nothing.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut inner = lock(&self.inner);
        if inner.started {
            return Ok(());
        }
        let Some(daemon) = inner.daemon.take() else {
            return Err(daemon_err(py, "daemon is closed"));
        };
        inner.started = true;
        let done = self.done.clone();
        runtime()?.spawn(async move {
            let result = match daemon {
                Served::Plain(d) => d.run().await.map_err(|e| e.to_string()),
                Served::NameServer(ns) => ns.run().await.map_err(|e| e.to_string()),
            };
            if let Err(e) = result {
                eprintln!("pyro_rs: daemon stopped: {e}");
            }
            let (m, cv) = &*done;
            *lock(m) = true;
            cv.notify_all();
        });
        Ok(())
    }

    /// Wait (GIL released) until the serving loop has ended, at most `timeout` seconds
    /// (None: no limit). True when it has ended or never started.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        if !lock(&self.inner).started {
            return true;
        }
        let done = self.done.clone();
        py.detach(move || {
            let (m, cv) = &*done;
            let g = lock(m);
            match timeout {
                None => *cv.wait_while(g, |d| !*d).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    let t = Duration::from_secs_f64(t.clamp(0.0, 1e6));
                    *cv.wait_timeout_while(g, t, |d| !*d)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            }
        })
    }

    /// Ask the serving loop to stop (it lets running calls finish).
    fn shutdown(&self) {
        lock(&self.inner).handle.shutdown();
    }

    /// Stop serving and release the socket and the worker threads. With `wait`, wait
    /// (GIL released, bounded) for the serving loop to end first.
    #[pyo3(signature = (wait=true))]
    fn close(&self, py: Python<'_>, wait: bool) {
        let (started, daemon) = {
            let mut inner = lock(&self.inner);
            inner.closed = true;
            inner.handle.shutdown();
            (inner.started, inner.daemon.take())
        };
        if started && wait {
            self.wait(py, Some(12.0));
        }
        py.detach(move || drop(daemon));
        self.core.lanes.close();
        self.core.pool.close();
    }

    /// True once `close` was called.
    fn is_closed(&self) -> bool {
        lock(&self.inner).closed
    }

    /// Ids of connections that made calls and are gone since the last check (for
    /// Pyro4's `clientDisconnect` and session instances).
    fn dead_connections(&self) -> Vec<u64> {
        let mut conns = lock(&self.core.conns);
        let dead: Vec<u64> = conns
            .iter()
            .filter(|(_, w)| w.strong_count() == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            conns.remove(id);
        }
        dead
    }

    /// Number of client connections being served.
    fn connection_count(&self) -> usize {
        lock(&self.inner).handle.connection_count()
    }

    /// Registered ids, `Pyro.Daemon` first.
    fn registered(&self) -> Vec<String> {
        lock(&self.inner).handle.registered()
    }
}

impl Drop for NativeDaemon {
    fn drop(&mut self) {
        if let Ok(inner) = self.inner.lock() {
            inner.handle.shutdown();
        }
        self.core.lanes.close();
        self.core.pool.close();
    }
}
