//! The Pyro4 payload shapes on top of a serializer: calls, exceptions, URI and Proxy
//! class dicts, batch exception wrappers.

use crate::{DecodeLimits, Dict, Result, SerializerKind, Value};
use pyro_wire::Uri;

/// One method call: Pyro4's `(objectId, method, vargs, kwargs)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Object id.
    pub object: String,
    /// Method name (`__getattr__`, `__setattr__`, `<batch>` for the special calls).
    pub method: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments; None for `__getattr__`, `__setattr__` and `<batch>` as Pyro4 sends.
    pub kwargs: Option<Dict>,
}

/// Encode a call payload in the given serializer's shape (serpent/marshal: 4-tuple with
/// vargs as tuple resp. list; json: `{"object", "method", "params", "kwargs"}`).
pub fn encode_call(kind: SerializerKind, call: &Call) -> Result<Vec<u8>> {
    todo!("{kind:?}{call:?}")
}

/// Decode a call payload (vargs accepted as tuple or list, kwargs as dict or None).
pub fn decode_call(kind: SerializerKind, bytes: &[u8], limits: &DecodeLimits) -> Result<Call> {
    todo!("{kind:?}{bytes:?}{limits:?}")
}

/// An exception as Pyro4 sends it: `{'__class__', '__exception__': True, 'args',
/// 'attributes'}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteException {
    /// Fully qualified class name, e.g. `builtins.ValueError`, `Pyro4.errors.NamingError`.
    pub class_name: String,
    /// The exception's args.
    pub args: Vec<Value>,
    /// Instance attributes (`_pyroTraceback` among them).
    pub attributes: Dict,
}

impl RemoteException {
    /// A new exception with these args and no attributes.
    pub fn new(class_name: &str, args: Vec<Value>) -> Self {
        RemoteException { class_name: class_name.to_string(), args, attributes: Dict::new() }
    }
    /// The remote traceback text (the `_pyroTraceback` lines joined), if any.
    pub fn traceback(&self) -> Option<String> {
        todo!()
    }
    /// `str(exc)` as Python renders it: the single arg, '' for none, the args tuple repr otherwise.
    pub fn message(&self) -> String {
        todo!()
    }
    /// The class dict value.
    pub fn to_value(&self) -> Value {
        todo!()
    }
    /// Recognise an exception class dict.
    pub fn from_value(value: &Value) -> Option<RemoteException> {
        todo!("{value:?}")
    }
}

/// The state Pyro4 serializes for a Proxy (9 items; 8 accepted on input).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyState {
    /// The proxy's URI.
    pub uri: Uri,
    /// Oneway method names.
    pub oneway: Vec<String>,
    /// Method names.
    pub methods: Vec<String>,
    /// Attribute names.
    pub attrs: Vec<String>,
    /// Timeout in seconds (0.0 = none).
    pub timeout: f64,
    /// HMAC key (sent as "b64:..." text).
    pub hmac_key: Option<Vec<u8>>,
    /// Handshake data.
    pub handshake: Value,
    /// Max retries.
    pub max_retries: i64,
    /// Serializer name, if the proxy had one set.
    pub serializer: Option<String>,
}

/// `{'__class__': 'Pyro4.core.URI', 'state': (protocol, object, sockname, host, port)}`.
pub fn uri_to_value(uri: &Uri) -> Value {
    todo!("{uri:?}")
}

/// Recognise a URI class dict (also accepts a plain URI string).
pub fn uri_from_value(value: &Value) -> Option<Uri> {
    todo!("{value:?}")
}

/// `{'__class__': 'Pyro4.core.Proxy', 'state': (...)}`.
pub fn proxy_to_value(state: &ProxyState) -> Value {
    todo!("{state:?}")
}

/// Recognise a Proxy class dict.
pub fn proxy_from_value(value: &Value) -> Option<ProxyState> {
    todo!("{value:?}")
}

/// Pyro4's receiving-side conversion of a decoded result, as `recreate_classes` does for
/// what a Rust caller can use: the serpent NaN dict `{'__class__':'float','value':'nan'}`
/// becomes a float, recursively. Other class dicts stay dicts (recognise them with the
/// functions above).
pub fn recreate_classes(value: Value) -> Value {
    todo!("{value:?}")
}

/// serpent's `tobytes`: bytes as is, or the `{'data': base64, 'encoding': 'base64'}`
/// dict decoded.
pub fn to_bytes(value: &Value) -> Option<Vec<u8>> {
    todo!("{value:?}")
}

/// The batch element a failed call becomes:
/// `{'__class__': 'Pyro4.futures._ExceptionWrapper', 'exception': {...}}`.
pub fn exception_wrapper_from_value(value: &Value) -> Option<RemoteException> {
    todo!("{value:?}")
}
