//! What a daemon calls: the [`Dispatch`] trait, the per-call [`CallContext`], the
//! [`Outcome`] of a call and the [`Fault`] (a Python exception) it may raise.

use super::DaemonHandle;
use pyro_codec::envelope::RemoteException;
use pyro_codec::{DecodeLimits, Dict, Value};
use pyro_wire::Annotations;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A boxed, sendable future (what asynchronous methods return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The items of a remote iterator (Pyro4's item streaming). `Err` ends the stream with
/// that exception; the end of the iterator is `StopIteration` for the client.
pub type ItemIter = Box<dyn Iterator<Item = Result<Value, Fault>> + Send>;

/// What a successful call produced.
pub enum Outcome {
    /// A plain return value (`Value::None` for procedures).
    Value(Value),
    /// An iterator: the daemon streams its items (Pyro4's `FLAGS_ITEMSTREAMRESULT`).
    Stream(ItemIter),
    /// A return value already serialized in the request's serializer
    /// ([`CallContext::serializer_id`]), for a dispatcher that writes its own values
    /// faster than through [`Value`]. The daemon sends it as the reply payload as is
    /// (inside a batch it is decoded back into the batch's result list).
    Encoded(Vec<u8>),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Outcome::Stream(_) => f.write_str("Stream(..)"),
            Outcome::Encoded(p) => write!(f, "Encoded({} bytes)", p.len()),
        }
    }
}

impl From<Value> for Outcome {
    fn from(v: Value) -> Outcome {
        Outcome::Value(v)
    }
}

/// The result of [`Dispatch::call`]: ready at once (synchronous methods, no boxing) or a
/// future to await.
pub enum CallFuture {
    /// Already computed.
    Ready(Result<Outcome, Fault>),
    /// Still running.
    Pending(BoxFuture<Result<Outcome, Fault>>),
}

impl CallFuture {
    /// Wait for the result.
    pub async fn resolve(self) -> Result<Outcome, Fault> {
        match self {
            CallFuture::Ready(r) => r,
            CallFuture::Pending(f) => f.await,
        }
    }
}

/// A Python exception raised by a remote call, sent to the client as Pyro4's exception
/// dict (`__class__`, `__exception__`, `args`, `attributes` with `_pyroTraceback`).
///
/// Use builtin class names (`builtins.ValueError`) or `Pyro4.errors.*` names: those are
/// the ones a Python Pyro4 client re-raises as the real exception class
/// (`SerializerBase.dict_to_class`); other names make the client fail with
/// `SerializeError("unsupported serialized class")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Fully qualified class name, e.g. `builtins.ValueError`.
    pub class_name: String,
    /// Exception args.
    pub args: Vec<Value>,
    /// Extra instance attributes (besides `_pyroTraceback`, which the daemon fills in).
    pub attributes: Dict,
    /// Traceback lines (each ending in a newline); None lets the daemon write a short
    /// Python-style traceback naming the remote method.
    pub traceback: Option<Vec<String>>,
}

impl Fault {
    /// An exception of `class_name` with one str argument (Python's `Class(message)`).
    pub fn new(class_name: &str, message: impl Into<String>) -> Fault {
        Fault::with_args(class_name, vec![Value::Str(message.into())])
    }

    /// An exception with arbitrary args.
    pub fn with_args(class_name: &str, args: Vec<Value>) -> Fault {
        Fault {
            class_name: class_name.to_string(),
            args,
            attributes: Dict::new(),
            traceback: None,
        }
    }

    /// `builtins.ValueError(message)`.
    pub fn value_error(message: impl Into<String>) -> Fault {
        Fault::new("builtins.ValueError", message)
    }

    /// `builtins.TypeError(message)`.
    pub fn type_error(message: impl Into<String>) -> Fault {
        Fault::new("builtins.TypeError", message)
    }

    /// `builtins.AttributeError(message)`.
    pub fn attribute_error(message: impl Into<String>) -> Fault {
        Fault::new("builtins.AttributeError", message)
    }

    /// `builtins.RuntimeError(message)`.
    pub fn runtime_error(message: impl Into<String>) -> Fault {
        Fault::new("builtins.RuntimeError", message)
    }

    /// `Pyro4.errors.<name>(message)`, e.g. `Fault::pyro("DaemonError", "unknown object")`.
    pub fn pyro(name: &str, message: impl Into<String>) -> Fault {
        Fault::new(&format!("Pyro4.errors.{name}"), message)
    }

    /// `builtins.StopIteration()` (what ends an item stream).
    pub fn stop_iteration() -> Fault {
        Fault::with_args("builtins.StopIteration", Vec::new())
    }

    /// Set the traceback lines.
    pub fn with_traceback(mut self, lines: Vec<String>) -> Fault {
        self.traceback = Some(lines);
        self
    }

    /// The class name without its module (`ValueError`).
    pub fn short_name(&self) -> &str {
        self.class_name
            .rsplit('.')
            .next()
            .unwrap_or(&self.class_name)
    }

    /// Python's `str(exc)` of this exception.
    pub fn message(&self) -> String {
        RemoteException::new(&self.class_name, self.args.clone()).message()
    }

    /// The wire form, with `_pyroTraceback` set to `traceback` (a list of lines, or
    /// None as Pyro4 sends for the stream-start pseudo exception).
    pub(crate) fn to_remote(&self, traceback: Option<Vec<String>>) -> RemoteException {
        let mut attributes = self.attributes.clone();
        let tb = match traceback {
            Some(lines) => Value::List(lines.into_iter().map(Value::Str).collect()),
            None => Value::None,
        };
        attributes.set("_pyroTraceback", tb);
        RemoteException {
            class_name: self.class_name.clone(),
            args: self.args.clone(),
            attributes,
        }
    }

    /// The traceback to send: the given lines, or a short Python-style one naming the
    /// object and method, ending in the `Class: message` line as Python's
    /// `traceback.format_exception` does.
    pub(crate) fn traceback_lines(&self, object: &str, method: &str) -> Vec<String> {
        if let Some(lines) = &self.traceback {
            return lines.clone();
        }
        let msg = self.message();
        let last = if msg.is_empty() {
            format!("{}\n", self.python_name())
        } else {
            format!("{}: {msg}\n", self.python_name())
        };
        vec![
            "Traceback (most recent call last):\n".to_string(),
            format!("  File \"<pyro-rs daemon>\", in {object}.{method}\n"),
            last,
        ]
    }

    /// The name Python's traceback shows: builtins bare, others qualified.
    fn python_name(&self) -> &str {
        self.class_name
            .strip_prefix("builtins.")
            .unwrap_or(&self.class_name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class_name, self.message())
    }
}

impl std::error::Error for Fault {}

/// What an object exposes (Pyro4's `get_exposed_members`): method names, the oneway
/// subset and property names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Callable method names.
    pub methods: Vec<String>,
    /// Methods the client should call without waiting for a reply.
    pub oneway: Vec<String>,
    /// Property names (reached with `__getattr__` / `__setattr__`).
    pub attrs: Vec<String>,
}

impl Metadata {
    /// `{"methods": ..., "oneway": ..., "attrs": ...}` with sets, or lists when
    /// `as_lists` (Pyro4 sends lists in the handshake and sets from `get_metadata`).
    pub fn to_value(&self, as_lists: bool) -> Value {
        let coll = |names: &[String]| {
            let items: Vec<Value> = names.iter().cloned().map(Value::Str).collect();
            if as_lists {
                Value::List(items)
            } else {
                Value::Set(items)
            }
        };
        Value::Dict(Dict::from_unique_pairs(vec![
            (Value::str("methods"), coll(&self.methods)),
            (Value::str("oneway"), coll(&self.oneway)),
            (Value::str("attrs"), coll(&self.attrs)),
        ]))
    }
}

/// Where a client is connected from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix socket peer (usually unnamed).
    Unix(Option<String>),
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Tcp(a) => write!(f, "{a}"),
            ClientAddr::Unix(Some(p)) => write!(f, "./u:{p}"),
            ClientAddr::Unix(None) => f.write_str("./u:<unnamed>"),
        }
    }
}

/// Per-connection facts shared by every call on that connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) addr: ClientAddr,
    pub(crate) daemon: DaemonHandle,
    pub(crate) response_annotations: Mutex<Annotations>,
    /// The buffer of a large reply payload this connection sent, kept for the next one
    /// ([`CallContext::take_buffer`]).
    pub(crate) spare: Mutex<Vec<u8>>,
}

/// Pyro4's `current_context` on the server side: who is calling and with what message.
/// Cheap to clone (a few reference counts).
#[derive(Debug, Clone)]
pub struct CallContext {
    pub(crate) conn: Arc<ConnInfo>,
    pub(crate) seq: u16,
    pub(crate) msg_flags: u16,
    pub(crate) serializer_id: u16,
    pub(crate) annotations: Arc<Annotations>,
    pub(crate) correlation_id: Uuid,
}

impl CallContext {
    /// What identifies the request this context belongs to: the calls of one batch
    /// share it. It keeps no connection alive.
    pub fn request_token(&self) -> RequestToken {
        RequestToken(self.annotations.clone())
    }

    /// The client's address (`current_context.client_sock_addr`).
    pub fn client_addr(&self) -> &ClientAddr {
        &self.conn.addr
    }
    /// A number identifying the client connection within this daemon.
    pub fn connection_id(&self) -> u64 {
        self.conn.id
    }
    /// Sequence number of the request.
    pub fn seq(&self) -> u16 {
        self.seq
    }
    /// FLAGS_* of the request.
    pub fn msg_flags(&self) -> u16 {
        self.msg_flags
    }
    /// Serializer id of the request.
    pub fn serializer_id(&self) -> u16 {
        self.serializer_id
    }
    /// The request's annotations (CORR included; HMAC already checked and removed).
    pub fn annotations(&self) -> &Annotations {
        &self.annotations
    }
    /// The correlation id: the request's CORR, or a fresh uuid4 (as Pyro4 does).
    pub fn correlation_id(&self) -> Uuid {
        self.correlation_id
    }
    /// Add an annotation to the reply (`current_context.response_annotations`).
    pub fn set_response_annotation(&self, id: [u8; 4], value: Vec<u8>) {
        if let Ok(mut a) = self.conn.response_annotations.lock() {
            a.insert(id, value);
        }
    }
    /// An empty buffer for this call's reply payload: the one a large [`Outcome::Encoded`]
    /// reply on this connection went out in (capacity kept), or a new empty one. A
    /// dispatcher that writes large results itself reuses it instead of allocating, and
    /// faulting in, fresh memory for every call; the daemon keeps the buffer again after
    /// sending.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.conn
            .spare
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
    /// The daemon serving this call (to register objects, or shut it down).
    pub fn daemon(&self) -> &DaemonHandle {
        &self.conn.daemon
    }
    /// A weak reference that stays upgradable while the client connection is served,
    /// so a dispatcher can notice disconnects later (Pyro4's `clientDisconnect` hook and
    /// the end of `instance_mode="session"` objects). Only liveness is observable.
    pub fn connection_token(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let strong: Arc<dyn std::any::Any + Send + Sync> = self.conn.clone();
        Arc::downgrade(&strong)
    }
}

/// Identifies one request (see [`CallContext::request_token`]); equal only to tokens of
/// the same request.
#[derive(Clone)]
pub struct RequestToken(Arc<Annotations>);

impl PartialEq for RequestToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RequestToken {}

impl fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestToken({:p})", Arc::as_ptr(&self.0))
    }
}

/// A remotely callable object.
///
/// The daemon resolves private names itself (Pyro4's `is_private_attribute`), then asks
/// the object. Calls on one connection run one after the other; calls from different
/// connections run concurrently, so implementations use interior mutability.
/// [`super::Exposed`] implements this for a state value plus closures.
pub trait Dispatch: Send + Sync + 'static {
    /// Class name for error texts (`'EchoServer' object has no attribute 'x'`).
    fn type_name(&self) -> &str;

    /// Exposed methods, oneway methods and properties.
    fn metadata(&self) -> Metadata;

    /// Check that `method` can be called (resolution errors are not wrapped in batches
    /// and are reported even before a oneway call is started). The default consults
    /// [`Dispatch::metadata`]; implementations with a faster lookup override it.
    fn check_method(&self, method: &str) -> Result<(), Fault> {
        let meta = self.metadata();
        if meta.methods.iter().any(|m| m == method) {
            return Ok(());
        }
        Err(missing_method(
            self.type_name(),
            method,
            meta.attrs.iter().any(|a| a == method),
        ))
    }

    /// Call a method (already checked with [`Dispatch::check_method`]).
    fn call(&self, ctx: CallContext, method: &str, args: Vec<Value>, kwargs: Dict) -> CallFuture;

    /// True when [`Dispatch::call_serpent`] may take calls. While no registered object
    /// says so, the daemon does not look for such calls at all. The default is false.
    fn decodes_serpent(&self) -> bool {
        false
    }

    /// Call a method with the arguments decoded by the object itself from the request's
    /// serpent payload (`(object, method, vargs, kwargs)` as text), without the value
    /// tree: the pyro_rs daemon builds Python arguments straight from the text. Asked for
    /// a plain serpent call (not batch, not a property) whose method passed
    /// [`Dispatch::check_method`], within `limits`; the payload must be decoded before
    /// this returns. `None` declines: the call is then decoded as values and goes to
    /// [`Dispatch::call`], which also reports any decoding error. The default declines.
    fn call_serpent(
        &self,
        _ctx: &CallContext,
        _method: &str,
        _payload: &[u8],
        _limits: &DecodeLimits,
    ) -> Option<CallFuture> {
        None
    }

    /// Read an exposed property (`__getattr__`).
    fn get_attr(&self, ctx: &CallContext, name: &str) -> Result<Value, Fault>;

    /// Write an exposed property (`__setattr__`); returns what the setter returns
    /// (normally None).
    fn set_attr(&self, ctx: &CallContext, name: &str, value: Value) -> Result<Value, Fault>;
}

/// Pyro4's errors for a method that cannot be resolved: an exposed property reached as a
/// method is "unexposed" (`getAttribute`), anything else is Python's own AttributeError.
pub(crate) fn missing_method(type_name: &str, method: &str, is_attr: bool) -> Fault {
    if is_attr {
        Fault::attribute_error(format!("attempt to access unexposed attribute '{method}'"))
    } else {
        Fault::attribute_error(format!("'{type_name}' object has no attribute '{method}'"))
    }
}

/// Pyro4's error for a property that is not exposed (`get_exposed_property_value`).
///
/// A name the class does not have at all fails in Python's own
/// `getattr(obj.__class__, name)`; a member that is not a (settable) property gets
/// Pyro4's text.
pub(crate) fn unknown_attr(type_name: &str, name: &str, exists: bool) -> Fault {
    if exists {
        Fault::attribute_error(format!(
            "attempt to access unexposed or unknown remote attribute '{name}'"
        ))
    } else {
        Fault::attribute_error(format!(
            "type object '{type_name}' has no attribute '{name}'"
        ))
    }
}

/// Names Pyro4 never lets a client reach (`util._private_dunder_methods`).
const PRIVATE_DUNDERS: &[&str] = &[
    "__init__",
    "__init_subclass__",
    "__class__",
    "__module__",
    "__weakref__",
    "__call__",
    "__new__",
    "__del__",
    "__repr__",
    "__unicode__",
    "__str__",
    "__format__",
    "__nonzero__",
    "__bool__",
    "__coerce__",
    "__cmp__",
    "__eq__",
    "__ne__",
    "__hash__",
    "__ge__",
    "__gt__",
    "__le__",
    "__lt__",
    "__dir__",
    "__enter__",
    "__exit__",
    "__copy__",
    "__deepcopy__",
    "__sizeof__",
    "__getattr__",
    "__setattr__",
    "__hasattr__",
    "__getattribute__",
    "__delattr__",
    "__instancecheck__",
    "__subclasscheck__",
    "__getinitargs__",
    "__getnewargs__",
    "__getstate__",
    "__setstate__",
    "__reduce__",
    "__reduce_ex__",
    "__getstate_for_dict__",
    "__setstate_from_dict__",
    "__subclasshook__",
];

/// Pyro4's `util.is_private_attribute`: the fixed dunder list, and every other name
/// starting with `_` unless it is a dunder longer than 4 characters.
pub fn is_private_attribute(name: &str) -> bool {
    if PRIVATE_DUNDERS.contains(&name) {
        return true;
    }
    if name.starts_with('_') {
        let dunder = name.len() > 4 && name.starts_with("__") && name.ends_with("__");
        return !dunder;
    }
    false
}

/// Arguments of one call, with helpers that bind them to parameter names and raise
/// Python's TypeErrors for a bad call.
#[derive(Debug, Clone)]
pub struct Args {
    /// Class name of the object (Python 3.10+ error texts use `Class.method()`).
    pub owner: Arc<str>,
    /// The method name (for error texts).
    pub method: String,
    /// Positional arguments.
    pub positional: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// The call context.
    pub ctx: CallContext,
}

impl Args {
    /// Bind to exactly these parameters (all required), like a Python function
    /// `def method(self, a, b)`: positional first, then keywords; missing, duplicate,
    /// surplus or unknown arguments give Python's TypeError texts.
    pub fn bind(self, params: &[&str]) -> Result<Vec<Value>, Fault> {
        let required = params.len();
        self.bind_optional(params, required)
    }

    /// Bind with the first `required` parameters mandatory and the rest optional
    /// (None when not given).
    pub fn bind_optional(self, params: &[&str], required: usize) -> Result<Vec<Value>, Fault> {
        let Args {
            owner,
            method,
            positional,
            kwargs,
            ..
        } = self;
        // CPython (3.10+) names the function by its qualified name in these messages.
        let method = if owner.is_empty() {
            method
        } else {
            format!("{owner}.{method}")
        };
        if positional.len() > params.len() {
            // CPython counts self in this message.
            let takes = params.len() + 1;
            let given = positional.len() + 1;
            let what = if required == params.len() {
                format!("{takes}")
            } else {
                format!("from {} to {takes}", required + 1)
            };
            let plural = if takes == 1 && required == params.len() {
                ""
            } else {
                "s"
            };
            return Err(Fault::type_error(format!(
                "{method}() takes {what} positional argument{plural} but {given} were given"
            )));
        }
        let mut out: Vec<Option<Value>> = positional.into_iter().map(Some).collect();
        out.resize(params.len(), None);
        for (k, v) in kwargs.into_entries() {
            let Some(name) = k.as_str() else {
                return Err(Fault::type_error("keywords must be strings"));
            };
            let Some(i) = params.iter().position(|p| *p == name) else {
                return Err(Fault::type_error(format!(
                    "{method}() got an unexpected keyword argument '{name}'"
                )));
            };
            if out[i].is_some() {
                return Err(Fault::type_error(format!(
                    "{method}() got multiple values for argument '{name}'"
                )));
            }
            out[i] = Some(v);
        }
        let missing: Vec<String> = params[..required]
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(p, _)| format!("'{p}'"))
            .collect();
        if !missing.is_empty() {
            let n = missing.len();
            let names = match missing.as_slice() {
                [one] => one.clone(),
                [init @ .., last] => format!("{} and {last}", init.join(", ")),
                [] => String::new(),
            };
            let s = if n == 1 { "" } else { "s" };
            return Err(Fault::type_error(format!(
                "{method}() missing {n} required positional argument{s}: {names}"
            )));
        }
        Ok(out.into_iter().map(|v| v.unwrap_or(Value::None)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_names_follow_pyro4() {
        assert!(is_private_attribute("_x"));
        assert!(is_private_attribute("__x"));
        assert!(is_private_attribute("__init__"));
        assert!(is_private_attribute("__getattr__"));
        assert!(is_private_attribute("____"));
        assert!(!is_private_attribute("__dunder__"));
        assert!(!is_private_attribute("__len__"));
        assert!(!is_private_attribute("echo"));
    }

    #[test]
    fn metadata_as_sets_or_lists() {
        let m = Metadata {
            methods: vec!["a".into()],
            oneway: vec![],
            attrs: vec!["p".into()],
        };
        let v = m.to_value(true);
        let d = v.as_dict().expect("dict");
        assert!(matches!(d.get_str("methods"), Some(Value::List(l)) if l.len() == 1));
        let v = m.to_value(false);
        assert!(
            matches!(v.as_dict().and_then(|d| d.get_str("oneway")), Some(Value::Set(s)) if s.is_empty())
        );
    }

    #[test]
    fn traceback_ends_in_python_style_line() {
        let f = Fault::value_error("bad");
        let tb = f.traceback_lines("obj", "m");
        assert_eq!(tb.last().map(String::as_str), Some("ValueError: bad\n"));
        let r = f.to_remote(Some(tb));
        assert_eq!(
            r.traceback().as_deref().map(|t| t.starts_with("Traceback")),
            Some(true)
        );
        assert_eq!(
            Fault::stop_iteration().traceback_lines("o", "m")[2],
            "StopIteration\n"
        );
    }
}
