//! The Pyro4 payload shapes on top of a serializer: calls, exceptions, URI and Proxy
//! class dicts, batch exception wrappers.
//!
//! The shapes follow `Pyro4.util` (the serializers' `dumpsCall`/`loadsCall`,
//! `SerializerBase.class_to_dict` / `dict_to_class`) and `Pyro4.core` (the URI and Proxy
//! `__getstate_for_dict__` / `__setstate_from_dict__` pairs) of Pyro4 4.82.

use crate::pyrepr::repr as py_repr;
use crate::{json, marshal, serpent, DecodeLimits, Dict, Error, Result, SerializerKind, Value};
use base64::Engine as _;
use pyro_wire::uri::{Location, UriKind};
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
    let kwargs = || call.kwargs.clone().map(Value::Dict).unwrap_or(Value::None);
    match kind {
        // SerpentSerializer.dumpsCall: serpent.dumps((obj, method, vargs, kwargs)); the
        // proxy's vargs is the *args tuple.
        SerializerKind::Serpent => serpent::to_vec(&Value::Tuple(vec![
            Value::Str(call.object.clone()),
            Value::Str(call.method.clone()),
            Value::Tuple(call.args.clone()),
            kwargs(),
        ])),
        // MarshalSerializer.dumpsCall rebuilds vargs as a list.
        SerializerKind::Marshal => {
            marshal::to_vec_call(&call.object, &call.method, &call.args, call.kwargs.as_ref())
        }
        // JsonSerializer.dumpsCall: a dict in this key order.
        SerializerKind::Json => {
            let d = Dict::from_unique_pairs(vec![
                (Value::str("object"), Value::Str(call.object.clone())),
                (Value::str("method"), Value::Str(call.method.clone())),
                (Value::str("params"), Value::List(call.args.clone())),
                (Value::str("kwargs"), kwargs()),
            ]);
            json::to_vec(&Value::Dict(d))
        }
        // PickleSerializer.dumpsCall: pickle.dumps((obj, method, vargs, kwargs)); dill and
        // cloudpickle peers read the same format.
        SerializerKind::Pickle | SerializerKind::Dill | SerializerKind::Cloudpickle => {
            crate::pickle::to_vec(&Value::Tuple(vec![
                Value::Str(call.object.clone()),
                Value::Str(call.method.clone()),
                Value::Tuple(call.args.clone()),
                kwargs(),
            ]))
        }
        other => kind_unsupported(other),
    }
}

fn kind_unsupported<T>(kind: SerializerKind) -> Result<T> {
    Err(Error::Unsupported(format!(
        "serializer {} is not supported",
        kind.name()
    )))
}

/// Decode a call payload (vargs accepted as tuple or list, kwargs as dict or None).
///
/// With serpent, the arguments go through [`recreate_classes`] as Pyro4's
/// `SerpentSerializer.loadsCall` does (the NaN class dict becomes a float).
pub fn decode_call(kind: SerializerKind, bytes: &[u8], limits: &DecodeLimits) -> Result<Call> {
    if !kind.is_supported() {
        return kind_unsupported(kind);
    }
    let v = kind.decode(bytes, limits)?;
    let (object, method, vargs, kwargs) = match kind {
        SerializerKind::Json => {
            let Value::Dict(mut d) = v else {
                return Err(Error::Shape(format!(
                    "json call payload is a {}, not a dict",
                    v.type_name()
                )));
            };
            let mut field = |k: &str| {
                d.remove_str(k)
                    .ok_or_else(|| Error::Shape(format!("json call payload lacks {k:?}")))
            };
            (
                field("object")?,
                field("method")?,
                field("params")?,
                field("kwargs")?,
            )
        }
        _ => {
            // Python unpacks `obj, method, vargs, kwargs = loads(data)`: any 4-sequence.
            let items = match v {
                Value::Tuple(t) | Value::List(t) => t,
                other => {
                    return Err(Error::Shape(format!(
                        "call payload is a {}, not a tuple",
                        other.type_name()
                    )))
                }
            };
            let Ok::<[Value; 4], _>([o, m, a, k]) = items.try_into() else {
                return Err(Error::Shape("call payload is not a 4-tuple".into()));
            };
            (o, m, a, k)
        }
    };
    let object = match object {
        Value::Str(s) => s,
        other => {
            return Err(Error::Shape(format!(
                "call object id is a {}, not a str",
                other.type_name()
            )))
        }
    };
    let method = match method {
        Value::Str(s) => s,
        other => {
            return Err(Error::Shape(format!(
                "call method name is a {}, not a str",
                other.type_name()
            )))
        }
    };
    let fix = |v: Value| {
        if kind == SerializerKind::Serpent {
            recreate_classes(v)
        } else {
            v
        }
    };
    let args = match vargs {
        Value::Tuple(a) | Value::List(a) => a.into_iter().map(fix).collect(),
        other => {
            return Err(Error::Shape(format!(
                "call vargs is a {}, not a tuple or list",
                other.type_name()
            )))
        }
    };
    let kwargs = match kwargs {
        Value::None => None,
        // A class dict as the whole kwargs (`{'__class__': 'float', ...}`) becomes that
        // object, which Python cannot pass as `**kwargs`: refused as a bad call.
        Value::Dict(d) => match fix(Value::Dict(d)) {
            Value::Dict(d) => Some(d),
            other => {
                return Err(Error::Shape(format!(
                    "call kwargs is a {}, not a dict",
                    other.type_name()
                )))
            }
        },
        other => {
            return Err(Error::Shape(format!(
                "call kwargs is a {}, not a dict",
                other.type_name()
            )))
        }
    };
    Ok(Call {
        object,
        method,
        args,
        kwargs,
    })
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
        RemoteException {
            class_name: class_name.to_string(),
            args,
            attributes: Dict::new(),
        }
    }
    /// The remote traceback text (the `_pyroTraceback` lines joined), if any.
    pub fn traceback(&self) -> Option<String> {
        // Pyro4.util.getPyroTraceback joins the list of lines with "".
        match self.attributes.get_str("_pyroTraceback")? {
            Value::Str(s) => Some(s.clone()),
            v => {
                let lines = v.as_seq()?;
                Some(lines.iter().map(py_str).collect::<Vec<_>>().concat())
            }
        }
    }
    /// `str(exc)` as Python renders it: the single arg, '' for none, the args tuple repr otherwise.
    pub fn message(&self) -> String {
        match self.args.as_slice() {
            [] => String::new(),
            [one] => py_str(one),
            many => py_repr(&Value::Tuple(many.to_vec())),
        }
    }
    /// The class dict value.
    pub fn to_value(&self) -> Value {
        // Key order of SerializerBase.class_to_dict for exceptions.
        Value::Dict(Dict::from_unique_pairs(vec![
            (Value::str("__class__"), Value::Str(self.class_name.clone())),
            (Value::str("__exception__"), Value::Bool(true)),
            (Value::str("args"), Value::Tuple(self.args.clone())),
            (
                Value::str("attributes"),
                Value::Dict(self.attributes.clone()),
            ),
        ]))
    }
    /// Recognise an exception class dict.
    ///
    /// Like `dict_to_class`: a dict with a str `__class__` that has `__exception__` set,
    /// or whose class is one of `Pyro4.errors` (those are rebuilt without the marker).
    pub fn from_value(value: &Value) -> Option<RemoteException> {
        let d = value.as_dict()?;
        let class_name = d.get_str("__class__")?.as_str()?;
        let marked = d.get_str("__exception__").is_some_and(Value::is_truthy);
        if !marked && !class_name.starts_with("Pyro4.errors.") {
            return None;
        }
        let args = match d.get_str("args") {
            None => Vec::new(),
            Some(a) => a.as_seq()?.to_vec(),
        };
        let attributes = match d.get_str("attributes") {
            None | Some(Value::None) => Dict::new(),
            Some(a) => a.as_dict()?.clone(),
        };
        Some(RemoteException {
            class_name: class_name.to_string(),
            args,
            attributes,
        })
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

const URI_CLASS: &str = "Pyro4.core.URI";
const PROXY_CLASS: &str = "Pyro4.core.Proxy";

fn class_dict(class: &str, state: Value) -> Value {
    Value::Dict(Dict::from_unique_pairs(vec![
        (Value::str("__class__"), Value::str(class)),
        (Value::str("state"), state),
    ]))
}

fn class_state<'a>(value: &'a Value, classes: &[&str]) -> Option<&'a [Value]> {
    let d = value.as_dict()?;
    let class = d.get_str("__class__")?.as_str()?;
    if !classes.contains(&class) {
        return None;
    }
    d.get_str("state")?.as_seq()
}

/// `{'__class__': 'Pyro4.core.URI', 'state': (protocol, object, sockname, host, port)}`.
pub fn uri_to_value(uri: &Uri) -> Value {
    // URI.__getstate__; a PYROMETA object is the set of its tags.
    let object = match uri.kind {
        UriKind::PyroMeta => Value::Set(uri.meta_tags().into_iter().map(Value::Str).collect()),
        _ => Value::Str(uri.object.clone()),
    };
    let (sockname, host, port) = match &uri.location {
        None => (Value::None, Value::None, Value::None),
        Some(Location::Unix(path)) => (Value::Str(path.clone()), Value::None, Value::None),
        Some(Location::Tcp { host, port }) => (
            Value::None,
            Value::Str(host.clone()),
            Value::Int(*port as i64),
        ),
    };
    class_dict(
        URI_CLASS,
        Value::Tuple(vec![
            Value::str(uri.kind.as_str()),
            object,
            sockname,
            host,
            port,
        ]),
    )
}

/// Recognise a URI class dict (also accepts a plain URI string).
pub fn uri_from_value(value: &Value) -> Option<Uri> {
    if let Value::Str(s) = value {
        return Uri::parse(s).ok();
    }
    // Pyro5 writes the same 5-tuple under its own module name.
    let [protocol, object, sockname, host, port] =
        class_state(value, &[URI_CLASS, "Pyro5.core.URI"])?
    else {
        return None;
    };
    let kind = UriKind::from_protocol(protocol.as_str()?)?;
    let object = match object {
        Value::Str(s) => s.clone(),
        other => {
            let tags: Option<Vec<&str>> = other.as_seq()?.iter().map(Value::as_str).collect();
            tags?.join(",")
        }
    };
    let location = match (sockname, host, port) {
        (Value::Str(path), _, _) => Some(Location::Unix(path.clone())),
        (Value::None, Value::Str(h), p) => Some(Location::Tcp {
            host: h.clone(),
            port: u16::try_from(p.as_i64()?).ok()?,
        }),
        (Value::None, Value::None, _) => None,
        _ => return None,
    };
    if kind == UriKind::Pyro && location.is_none() {
        return None;
    }
    Some(Uri {
        kind,
        object,
        location,
    })
}

/// `{'__class__': 'Pyro4.core.Proxy', 'state': (...)}`.
pub fn proxy_to_value(state: &ProxyState) -> Value {
    // Proxy.__getstate_for_dict__: uri string, three tuples, timeout, "b64:" hmac,
    // handshake, max retries, serializer.
    let names = |v: &[String]| Value::Tuple(v.iter().cloned().map(Value::Str).collect());
    let hmac = match &state.hmac_key {
        Some(k) => Value::Str(format!(
            "b64:{}",
            base64::engine::general_purpose::STANDARD.encode(k)
        )),
        None => Value::None,
    };
    class_dict(
        PROXY_CLASS,
        Value::Tuple(vec![
            Value::Str(state.uri.to_string()),
            names(&state.oneway),
            names(&state.methods),
            names(&state.attrs),
            Value::Float(state.timeout),
            hmac,
            state.handshake.clone(),
            Value::Int(state.max_retries),
            state
                .serializer
                .clone()
                .map(Value::Str)
                .unwrap_or(Value::None),
        ]),
    )
}

/// Recognise a Proxy class dict.
pub fn proxy_from_value(value: &Value) -> Option<ProxyState> {
    let state = class_state(value, &[PROXY_CLASS])?;
    // Proxy.__setstate_from_dict__ reads 8 items and the serializer when there is a ninth
    // (Pyrolite sends 8).
    if state.len() != 8 && state.len() != 9 {
        return None;
    }
    let names = |v: &Value| -> Option<Vec<String>> {
        v.as_seq()?
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let hmac_key = match &state[5] {
        Value::None => None,
        Value::Str(s) if s.is_empty() => None,
        Value::Str(s) => {
            let b64 = s.strip_prefix("b64:")?; // Pyro4 raises "hmac encoding error" otherwise
            Some(base64::engine::general_purpose::STANDARD.decode(b64).ok()?)
        }
        _ => return None,
    };
    let serializer = match state.get(8) {
        None | Some(Value::None) => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    Some(ProxyState {
        uri: uri_from_value(&state[0])?,
        oneway: names(&state[1])?,
        methods: names(&state[2])?,
        attrs: names(&state[3])?,
        timeout: match &state[4] {
            Value::None => 0.0,
            t => t.as_f64()?,
        },
        hmac_key,
        handshake: state[6].clone(),
        max_retries: state[7].as_i64().unwrap_or(0),
        serializer,
    })
}

/// Pyro4's receiving-side conversion of a decoded result, as `recreate_classes` does for
/// what a Rust caller can use: the serpent NaN dict `{'__class__':'float','value':'nan'}`
/// becomes a float, recursively. Other class dicts stay dicts (recognise them with the
/// functions above).
pub fn recreate_classes(value: Value) -> Value {
    match value {
        Value::Tuple(v) => Value::Tuple(v.into_iter().map(recreate_classes).collect()),
        Value::List(v) => Value::List(v.into_iter().map(recreate_classes).collect()),
        Value::Set(v) => Value::Set(v.into_iter().map(recreate_classes).collect()),
        Value::Dict(d) => {
            if let Some(class) = d.get_str("__class__") {
                // SerpentSerializer.dict_to_class: float(data["value"]). Any other class dict
                // is converted as a whole by Python (its contents untouched), so we leave it.
                if class.as_str() == Some("float") {
                    if let Some(f) = d
                        .get_str("value")
                        .and_then(Value::as_str)
                        .and_then(parse_py_float)
                    {
                        return Value::Float(f);
                    }
                }
                return Value::Dict(d);
            }
            // Keys are hashable (never dicts), so only values can hold class dicts.
            let pairs = d
                .into_entries()
                .into_iter()
                .map(|(k, v)| (k, recreate_classes(v)))
                .collect();
            Value::Dict(Dict::from_unique_pairs(pairs))
        }
        other => other,
    }
}

/// Python's `float(text)` for the texts serpent puts in the NaN dict (and numbers).
fn parse_py_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "nan" => f64::NAN,
        "inf" | "infinity" => f64::INFINITY,
        _ => return t.parse().ok(),
    };
    Some(if neg { -v } else { v })
}

/// serpent's `tobytes`: bytes as is, or the `{'data': base64, 'encoding': 'base64'}`
/// dict decoded.
pub fn to_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Bytes(b) => Some(b.clone()),
        Value::Dict(d) => {
            if d.get_str("encoding")?.as_str()? != "base64" {
                return None;
            }
            let data = d.get_str("data")?.as_str()?;
            // base64.b64decode (non-validating) skips characters outside the alphabet,
            // newlines in particular.
            let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(clean).ok()
        }
        _ => None,
    }
}

/// The batch element a failed call becomes:
/// `{'__class__': 'Pyro4.futures._ExceptionWrapper', 'exception': {...}}`.
pub fn exception_wrapper_from_value(value: &Value) -> Option<RemoteException> {
    let d = value.as_dict()?;
    if d.get_str("__class__")?.as_str()? != "Pyro4.futures._ExceptionWrapper" {
        return None;
    }
    RemoteException::from_value(d.get_str("exception")?)
}

/// The batch element wrapping an exception (what a daemon puts in a batch result).
pub fn exception_wrapper_to_value(exc: &RemoteException) -> Value {
    Value::Dict(Dict::from_unique_pairs(vec![
        (
            Value::str("__class__"),
            Value::str("Pyro4.futures._ExceptionWrapper"),
        ),
        (Value::str("exception"), exc.to_value()),
    ]))
}

// ---------------------------------------------------------------------------------
// Python str() / repr() of values, for exception messages.
// ---------------------------------------------------------------------------------

/// Python's `str(v)`: a str as is, anything else its repr.
fn py_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => py_repr(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_follows_python_str() {
        let e = RemoteException::new("builtins.ValueError", vec![]);
        assert_eq!(e.message(), "");
        let e = RemoteException::new("builtins.ValueError", vec![Value::str("bad")]);
        assert_eq!(e.message(), "bad");
        let e = RemoteException::new(
            "builtins.ValueError",
            vec![Value::str("bad"), Value::Int(3)],
        );
        assert_eq!(e.message(), "('bad', 3)");
        let e = RemoteException::new(
            "builtins.KeyError",
            vec![Value::Tuple(vec![Value::str("it's")])],
        );
        assert_eq!(e.message(), "(\"it's\",)");
    }

    #[test]
    fn repr_of_numbers() {
        assert_eq!(py_repr(&Value::Complex(1.0, 2.0)), "(1+2j)");
        assert_eq!(py_repr(&Value::Complex(0.0, -2.5)), "-2.5j");
        assert_eq!(py_repr(&Value::Complex(-1.0, -0.0)), "(-1-0j)");
        assert_eq!(py_repr(&Value::Float(f64::NEG_INFINITY)), "-inf");
        assert_eq!(py_repr(&Value::Bytes(b"a\x00'".to_vec())), "b\"a\\x00'\"");
    }

    #[test]
    fn kwargs_that_become_a_float_are_refused() {
        // Found while adding the daemon's serpent fast path: this used to panic.
        let doc = b"# serpent utf-8 python3.2\n('o','m',(),{'__class__':'float','value':'1.5'})";
        let err = decode_call(SerializerKind::Serpent, doc, &DecodeLimits::default())
            .expect_err("a float is not a kwargs dict");
        assert!(err.to_string().contains("call kwargs is a float"), "{err}");
    }

    #[test]
    fn recreate_nan_dict() {
        let nan = Value::Dict(
            Dict::from_pairs(vec![
                (Value::str("__class__"), Value::str("float")),
                (Value::str("value"), Value::str("nan")),
            ])
            .unwrap(),
        );
        let v = recreate_classes(Value::List(vec![Value::Tuple(vec![nan.clone()])]));
        match v {
            Value::List(l) => match &l[0] {
                Value::Tuple(t) => assert!(matches!(t[0], Value::Float(f) if f.is_nan())),
                _ => panic!(),
            },
            _ => panic!(),
        }
    }
}
