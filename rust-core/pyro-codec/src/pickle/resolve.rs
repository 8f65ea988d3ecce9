//! From the unpickler's arena to a [`Value`]: the registry of known classes (see the
//! table in the module docs), copying shared nodes under a size budget, refusing cycles
//! and nesting deeper than the limit.

use super::decode::{Arena, Global, How, Instance, Node, Obj};
use crate::envelope::{uri_from_value, RemoteException};
use crate::value::dedup_set;
use crate::{DecodeLimits, Dict, Error, Result, Value};
use base64::Engine as _;
use num_traits::ToPrimitive;

const CODEC: &str = "pickle";

/// CPython 3.11's builtin exception classes (plus the Python 2 aliases that still exist).
const BUILTIN_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
];

/// Whether a global names an exception class: a builtin one, anything in `Pyro4.errors`,
/// or (like Pyrolite's fallback) a class whose name ends in `Error`, `Exception` or
/// `Warning`. Such classes become exception class dicts, as Pyro4's serpent serializer
/// sends every exception.
pub(crate) fn is_exception_class(g: &Global) -> bool {
    (g.module == "builtins" && BUILTIN_EXCEPTIONS.contains(&g.name.as_str()))
        || g.module == "Pyro4.errors"
        || ["Error", "Exception", "Warning"]
            .iter()
            .any(|s| g.name.ends_with(s))
}

/// Turn the arena into a value.
pub(crate) fn materialise(
    arena: &Arena,
    root: Obj,
    limits: &DecodeLimits,
    budget: usize,
) -> Result<Value> {
    let mut m = Mat {
        arena,
        visiting: vec![false; arena.nodes.len()],
        depth: 0,
        max_depth: limits.max_depth,
        budget,
    };
    m.value(root)
}

struct Mat<'a> {
    arena: &'a Arena,
    visiting: Vec<bool>,
    depth: usize,
    max_depth: usize,
    budget: usize,
}

fn shape(msg: impl Into<String>) -> Error {
    Error::Shape(msg.into())
}

impl<'a> Mat<'a> {
    fn syntax(&self, id: u32, message: impl Into<String>) -> Error {
        Error::Syntax {
            codec: CODEC,
            message: message.into(),
            offset: self.arena.offsets.get(id as usize).copied().unwrap_or(0),
        }
    }

    fn charge(&mut self, n: usize) -> Result<()> {
        match self.budget.checked_sub(n) {
            Some(rest) => {
                self.budget = rest;
                Ok(())
            }
            None => Err(Error::Syntax {
                codec: CODEC,
                message: "decoded value exceeds the size budget (shared memo references expand when copied)".into(),
                offset: 0,
            }),
        }
    }

    fn value(&mut self, o: Obj) -> Result<Value> {
        self.charge(std::mem::size_of::<Value>())?;
        Ok(match o {
            Obj::None => Value::None,
            Obj::Bool(b) => Value::Bool(b),
            Obj::Int(i) => Value::Int(i),
            Obj::Float(f) => Value::Float(f),
            Obj::Node(id) => return self.node(id),
        })
    }

    fn values(&mut self, items: &[Obj]) -> Result<Vec<Value>> {
        items.iter().map(|&o| self.value(o)).collect()
    }

    fn node(&mut self, id: u32) -> Result<Value> {
        let arena = self.arena;
        let node = arena.get(id);
        // Leaves need no depth or cycle bookkeeping.
        match node {
            Node::Big(b) => {
                self.charge(b.bits() as usize / 8)?;
                return Ok(Value::from_bigint(b.clone()));
            }
            Node::Str(s) => {
                self.charge(s.len())?;
                return Ok(Value::Str(s.clone()));
            }
            Node::Py2Str(b) => {
                self.charge(b.len())?;
                // Python 3's Unpickler(encoding='ASCII') default.
                return match std::str::from_utf8(b) {
                    Ok(s) if b.is_ascii() => Ok(Value::Str(s.to_string())),
                    _ => Err(self.syntax(
                        id,
                        "Python 2 str with non-ASCII bytes (Python 3 needs encoding='latin1' for it)",
                    )),
                };
            }
            Node::Bytes(b) => {
                self.charge(b.len())?;
                return Ok(Value::Bytes(b.clone()));
            }
            Node::Global(g) => {
                return Err(self.syntax(
                    id,
                    format!("{} is a class or function, not a value", g.dotted()),
                ))
            }
            _ => {}
        }
        let slot = id as usize;
        if self.visiting[slot] {
            return Err(self.syntax(
                id,
                "recursive structure (an object containing itself) cannot be represented",
            ));
        }
        if self.depth >= self.max_depth {
            return Err(Error::TooDeep {
                codec: CODEC,
                limit: self.max_depth,
                offset: arena.offsets.get(slot).copied().unwrap_or(0),
            });
        }
        self.visiting[slot] = true;
        self.depth += 1;
        let r = self.container(id, node);
        self.depth -= 1;
        self.visiting[slot] = false;
        r
    }

    fn container(&mut self, id: u32, node: &'a Node) -> Result<Value> {
        match node {
            Node::Tuple(items) => Ok(Value::Tuple(self.values(items)?)),
            Node::List(items) => Ok(Value::List(self.values(items)?)),
            Node::Set(items) => {
                let v = self.values(items)?;
                Ok(Value::Set(dedup_set(v)?))
            }
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for &(k, v) in pairs {
                    out.push((self.value(k)?, self.value(v)?));
                }
                Ok(Value::Dict(Dict::from_pairs(out)?))
            }
            Node::Instance(inst) => self.instance(id, inst),
            _ => Err(self.syntax(id, "unexpected node")),
        }
    }

    fn instance(&mut self, id: u32, inst: &'a Instance) -> Result<Value> {
        let g = &inst.class;
        // Borrowed from the arena: a shared argument tuple is never copied.
        let args: &'a [Obj] = self.arg_objs(inst);
        match (g.module.as_str(), g.name.as_str(), inst.how) {
            ("builtins", "set" | "frozenset", How::Call) => {
                let mut items = match args {
                    [] => Vec::new(),
                    [it] => self.iterable(id, *it)?,
                    _ => return Err(self.syntax(id, "set() takes at most one argument")),
                };
                items.extend(self.values(&inst.items)?);
                Ok(Value::Set(dedup_set(items)?))
            }
            ("builtins", "bytearray" | "bytes", How::Call) | ("_codecs", "encode", How::Call) => {
                let b = self.bytes_call(id, g, args)?;
                self.charge(b.len())?;
                Ok(Value::Bytes(b))
            }
            ("builtins", "complex", How::Call) => {
                let parts = self.values(args)?;
                let f = |v: &Value| v.as_f64();
                match parts.as_slice() {
                    [] => Some(Value::Complex(0.0, 0.0)),
                    [r] => f(r).map(|r| Value::Complex(r, 0.0)),
                    [r, i] => f(r).zip(f(i)).map(|(r, i)| Value::Complex(r, i)),
                    _ => None,
                }
                .ok_or_else(|| self.syntax(id, "complex() arguments are not numbers"))
            }
            ("decimal", "Decimal", How::Call) => match self.values(args)?.as_slice() {
                [Value::Str(s)] => Ok(Value::Str(s.clone())),
                [Value::Int(i)] => Ok(Value::Str(i.to_string())),
                [Value::BigInt(i)] => Ok(Value::Str(i.to_string())),
                _ => Err(self.syntax(id, "decimal.Decimal state is not a str")),
            },
            ("datetime", "datetime" | "date" | "time", How::Call) => {
                let s = self.datetime(id, &g.name, args)?;
                self.charge(s.len())?;
                Ok(Value::Str(s))
            }
            ("datetime", "timedelta", How::Call) => {
                let us = self.timedelta_us(id, args)?;
                // timedelta.total_seconds(): exact for spans under 2**53 microseconds.
                Ok(Value::Float(us as f64 / 1e6))
            }
            ("collections", "OrderedDict", How::Call) => {
                let mut pairs = Vec::new();
                if let [it] = args {
                    for item in self.iterable(id, *it)? {
                        match item {
                            Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => {
                                let mut kv = kv.into_iter();
                                if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                                    pairs.push((k, v));
                                }
                            }
                            _ => return Err(self.syntax(id, "OrderedDict items are not pairs")),
                        }
                    }
                }
                for &(k, v) in &inst.dict_items {
                    pairs.push((self.value(k)?, self.value(v)?));
                }
                Ok(Value::Dict(Dict::from_pairs(pairs)?))
            }
            ("uuid", "UUID", How::New) => {
                let state = self.state(inst)?;
                let n = state
                    .as_ref()
                    .and_then(Value::as_dict)
                    .and_then(|d| d.get_str("int"))
                    .and_then(|v| match v {
                        Value::Int(i) => u128::try_from(*i).ok(),
                        Value::BigInt(b) => b.to_u128(),
                        _ => None,
                    })
                    .ok_or_else(|| self.syntax(id, "uuid.UUID state lacks its int"))?;
                let h = format!("{n:032x}");
                Ok(Value::Str(format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )))
            }
            ("Pyro4.core", "URI", _) => {
                // URI.__getstate__: (protocol, object, sockname, host, port).
                match self.state(inst)? {
                    Some(Value::Tuple(t)) if t.len() == 5 => {
                        Ok(class_dict("Pyro4.core.URI", Value::Tuple(t)))
                    }
                    _ => Err(shape("Pyro4.core.URI state is not a 5-tuple")),
                }
            }
            ("Pyro4.core", "Proxy", _) => self.proxy(inst),
            _ if is_exception_class(g) => {
                let args = self.values(args)?;
                let attributes = match self.state(inst)? {
                    None | Some(Value::None) => Dict::new(),
                    Some(Value::Dict(d)) => d,
                    // (instance dict, slots dict) as object.__reduce_ex__ makes it.
                    Some(Value::Tuple(t)) if t.len() == 2 => merged(t)?,
                    Some(other) => {
                        let mut d = Dict::new();
                        d.set("state", other);
                        d
                    }
                };
                Ok(RemoteException {
                    class_name: g.dotted(),
                    args,
                    attributes,
                }
                .to_value())
            }
            (_, _, How::New) => {
                // serpent's class dict for objects: __class__ first, then the state.
                let mut d = match self.state(inst)? {
                    None | Some(Value::None) => class_dict_with(g.dotted(), Dict::new()),
                    Some(Value::Dict(s)) => class_dict_with(g.dotted(), s),
                    Some(Value::Tuple(t)) if t.len() == 2 && is_slots_state(&t) => {
                        class_dict_with(g.dotted(), merged(t)?)
                    }
                    Some(other) => {
                        let mut d = class_dict_with(g.dotted(), Dict::new());
                        d.set("state", other);
                        d
                    }
                };
                if !args.is_empty() {
                    let a = self.values(args)?;
                    d.set("__args__", Value::Tuple(a));
                }
                if !inst.items.is_empty() {
                    let items = self.values(&inst.items)?;
                    d.set("__items__", Value::List(items));
                }
                if !inst.dict_items.is_empty() {
                    let mut pairs = Vec::new();
                    for &(k, v) in &inst.dict_items {
                        pairs.push((self.value(k)?, self.value(v)?));
                    }
                    d.set("__dictitems__", Value::Dict(Dict::from_pairs(pairs)?));
                }
                Ok(Value::Dict(d))
            }
            (_, _, How::Call) => Err(self.syntax(
                id,
                format!("{} cannot be represented as a value", g.dotted()),
            )),
        }
    }

    fn arg_objs(&self, inst: &Instance) -> &'a [Obj] {
        let arena: &'a Arena = self.arena;
        match inst.args {
            Some(Obj::Node(id)) => match arena.get(id) {
                Node::Tuple(t) => t,
                _ => &[],
            },
            _ => &[],
        }
    }

    fn state(&mut self, inst: &Instance) -> Result<Option<Value>> {
        inst.state.map(|s| self.value(s)).transpose()
    }

    fn iterable(&mut self, id: u32, o: Obj) -> Result<Vec<Value>> {
        match self.value(o)? {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => Ok(v),
            Value::Dict(d) => Ok(d.into_entries().into_iter().map(|(k, _)| k).collect()),
            other => Err(self.syntax(id, format!("'{}' is not iterable here", other.type_name()))),
        }
    }

    /// Bytes from the raw payload of a bytes-like argument: a Python 2 str is its bytes.
    fn raw_bytes(&mut self, o: Obj) -> Result<Option<Vec<u8>>> {
        if let Obj::Node(id) = o {
            if let Node::Py2Str(b) = self.arena.get(id) {
                return Ok(Some(b.clone()));
            }
        }
        Ok(match self.value(o)? {
            Value::Bytes(b) => Some(b),
            _ => None,
        })
    }

    /// `bytes(...)`, `bytearray(...)` and `_codecs.encode(str, encoding)`.
    fn bytes_call(&mut self, id: u32, g: &Global, args: &[Obj]) -> Result<Vec<u8>> {
        let codecs = g.module == "_codecs";
        match args {
            [] if !codecs => Ok(Vec::new()),
            [one] if !codecs => {
                if let Some(b) = self.raw_bytes(*one)? {
                    return Ok(b);
                }
                match self.value(*one)? {
                    Value::List(v) | Value::Tuple(v) => v
                        .iter()
                        .map(|x| x.as_i64().and_then(|i| u8::try_from(i).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .ok_or_else(|| self.syntax(id, "bytes() items are not in range(256)")),
                    other => Err(self.syntax(
                        id,
                        format!("cannot make bytes from a {}", other.type_name()),
                    )),
                }
            }
            [text] | [text, _] => {
                let s = match self.value(*text)? {
                    Value::Str(s) => s,
                    other => {
                        return Err(
                            self.syntax(id, format!("cannot encode a {}", other.type_name()))
                        )
                    }
                };
                let encoding = match args.get(1) {
                    None => "utf-8".to_string(),
                    Some(&e) => match self.value(e)? {
                        Value::Str(e) => e.to_ascii_lowercase().replace('_', "-"),
                        _ => return Err(self.syntax(id, "encoding is not a str")),
                    },
                };
                encode_text(&s, &encoding)
                    .ok_or_else(|| self.syntax(id, format!("cannot encode with {encoding:?}")))
            }
            _ => Err(self.syntax(id, format!("bad arguments for {}", g.dotted()))),
        }
    }

    fn timedelta_us(&mut self, id: u32, args: &[Obj]) -> Result<i128> {
        let vals = self.values(args)?;
        let mut total: i128 = 0;
        for (v, scale) in vals.iter().zip([86_400_000_000i128, 1_000_000, 1]) {
            let n = v
                .as_i64()
                .ok_or_else(|| self.syntax(id, "timedelta state is not ints"))?;
            total += n as i128 * scale;
        }
        if vals.len() > 3 {
            return Err(self.syntax(id, "timedelta takes days, seconds, microseconds"));
        }
        Ok(total)
    }

    /// The UTC offset of a pickled tzinfo in microseconds (`None` for a naive value).
    fn tz_offset(&mut self, o: Obj) -> Result<Option<i128>> {
        let Obj::Node(id) = o else {
            return match o {
                Obj::None => Ok(None),
                _ => Err(shape("tzinfo is not an object")),
            };
        };
        let Node::Instance(inst) = self.arena.get(id) else {
            return Err(self.syntax(id, "tzinfo is not an object"));
        };
        let args = self.arg_objs(inst);
        let g = &inst.class;
        if g.is("datetime", "timezone") {
            if let Some(&Obj::Node(tid)) = args.first() {
                if let Node::Instance(t) = self.arena.get(tid) {
                    if t.class.is("datetime", "timedelta") {
                        let targs = self.arg_objs(t);
                        return self.timedelta_us(tid, targs).map(Some);
                    }
                }
            }
            return Err(self.syntax(id, "datetime.timezone without a timedelta"));
        }
        if g.is("pytz", "_UTC") {
            return Ok(Some(0));
        }
        if g.is("pytz", "_p") {
            // pytz._p(zone, utcoffset_seconds, dst_seconds, tzname) for a localized zone.
            if let Some(secs) = args.get(1).map(|&a| self.value(a)).transpose()? {
                if let Some(s) = secs.as_i64() {
                    return Ok(Some(s as i128 * 1_000_000));
                }
            }
        }
        Err(self.syntax(
            id,
            format!(
                "unsupported tzinfo {} (only fixed offsets are known)",
                g.dotted()
            ),
        ))
    }

    fn datetime(&mut self, id: u32, kind: &str, args: &[Obj]) -> Result<String> {
        let bad = |m: &Self| m.syntax(id, format!("bad datetime.{kind} state"));
        let (fields, tz): (Vec<i64>, Option<Obj>) = match args.first() {
            None => return Err(bad(self)),
            Some(&first) => match self.raw_bytes_or_latin1(first)? {
                Some(b) => {
                    let f = unpack_datetime(kind, &b).ok_or_else(|| bad(self))?;
                    (f, args.get(1).copied())
                }
                None => {
                    // datetime(year, month, day, ...) with plain ints.
                    let n = if kind == "date" {
                        3
                    } else if kind == "time" {
                        4
                    } else {
                        7
                    };
                    let vals = self.values(&args[..args.len().min(n)])?;
                    let f: Option<Vec<i64>> = vals.iter().map(Value::as_i64).collect();
                    (f.ok_or_else(|| bad(self))?, args.get(n).copied())
                }
            },
        };
        let offset = match tz {
            Some(t) if kind != "date" => self.tz_offset(t)?,
            _ => None,
        };
        iso_format(kind, &fields, offset).ok_or_else(|| bad(self))
    }

    fn raw_bytes_or_latin1(&mut self, o: Obj) -> Result<Option<Vec<u8>>> {
        if let Obj::Node(id) = o {
            match self.arena.get(id) {
                Node::Py2Str(b) | Node::Bytes(b) => return Ok(Some(b.clone())),
                // pickle(encoding='latin1') style: state decoded to a str of chars < 256.
                Node::Str(s) => return Ok(s.chars().map(|c| u8::try_from(c).ok()).collect()),
                Node::Instance(_) => {
                    if let Value::Bytes(b) = self.value(o)? {
                        return Ok(Some(b));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Pyro4.core.Proxy: the pickled `__getstate__` tuple (URI object, oneway set, methods
    /// set, attrs set, timeout, hmac bytes, handshake, max retries[, serializer]) becomes
    /// the `__getstate_for_dict__` tuple the envelope functions read.
    fn proxy(&mut self, inst: &Instance) -> Result<Value> {
        let Some(Value::Tuple(mut t)) = self.state(inst)? else {
            return Err(shape("Pyro4.core.Proxy state is not a tuple"));
        };
        if t.len() != 8 && t.len() != 9 {
            return Err(shape("Pyro4.core.Proxy state is not an 8- or 9-tuple"));
        }
        t[0] = match &t[0] {
            Value::Str(s) => Value::Str(s.clone()),
            other => Value::Str(
                uri_from_value(other)
                    .ok_or_else(|| shape("Pyro4.core.Proxy state has no valid URI"))?
                    .to_string(),
            ),
        };
        for slot in &mut t[1..4] {
            let items = match std::mem::replace(slot, Value::None) {
                Value::Set(v) | Value::Tuple(v) | Value::List(v) => v,
                Value::None => Vec::new(),
                _ => return Err(shape("Pyro4.core.Proxy method names are not a set")),
            };
            *slot = Value::Tuple(items);
        }
        t[5] = match std::mem::replace(&mut t[5], Value::None) {
            Value::None => Value::None,
            Value::Bytes(b) => Value::Str(format!(
                "b64:{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
            Value::Str(s) => Value::Str(format!(
                "b64:{}",
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
            )),
            _ => return Err(shape("Pyro4.core.Proxy hmac key is not bytes")),
        };
        Ok(class_dict("Pyro4.core.Proxy", Value::Tuple(t)))
    }
}

fn class_dict(class: &str, state: Value) -> Value {
    Value::Dict(Dict::from_unique_pairs(vec![
        (Value::str("__class__"), Value::str(class)),
        (Value::str("state"), state),
    ]))
}

fn is_slots_state(t: &[Value]) -> bool {
    matches!(t, [Value::None | Value::Dict(_), Value::Dict(_)])
}

/// `(instance dict or None, slots dict)` merged into one dict (hash-indexed: the state
/// may be large).
fn merged(t: Vec<Value>) -> Result<Dict> {
    let mut pairs = Vec::new();
    for part in t {
        if let Value::Dict(p) = part {
            pairs.extend(p.into_entries());
        }
    }
    Dict::from_pairs(pairs)
}

/// serpent's class dict: `__class__` first, then the state's entries (an own
/// `__class__` entry of the state is dropped).
fn class_dict_with(class: String, state: Dict) -> Dict {
    let mut pairs = vec![(Value::str("__class__"), Value::Str(class))];
    pairs.extend(
        state
            .into_entries()
            .into_iter()
            .filter(|(k, _)| k.as_str() != Some("__class__")),
    );
    // The state's keys are distinct already and none is "__class__" any more.
    Dict::from_unique_pairs(pairs)
}

fn encode_text(s: &str, encoding: &str) -> Option<Vec<u8>> {
    match encoding {
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" => {
            s.chars().map(|c| u8::try_from(c).ok()).collect()
        }
        "ascii" | "us-ascii" => s.is_ascii().then(|| s.as_bytes().to_vec()),
        "utf-8" | "utf8" => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// The packed state of `datetime.datetime` (10 bytes), `date` (4) and `time` (6) as
/// fields year, month, day, hour, minute, second, microsecond (date: 3, time: 4 fields).
/// The fold flag (protocol 4+) sits in the high bit of the month resp. hour byte.
fn unpack_datetime(kind: &str, b: &[u8]) -> Option<Vec<i64>> {
    let us = |x: &[u8]| (x[0] as i64) << 16 | (x[1] as i64) << 8 | x[2] as i64;
    match (kind, b.len()) {
        ("datetime", 10) => Some(vec![
            (b[0] as i64) << 8 | b[1] as i64,
            (b[2] & 0x7f) as i64,
            b[3] as i64,
            b[4] as i64,
            b[5] as i64,
            b[6] as i64,
            us(&b[7..10]),
        ]),
        ("date", 4) => Some(vec![
            (b[0] as i64) << 8 | b[1] as i64,
            b[2] as i64,
            b[3] as i64,
        ]),
        ("time", 6) => Some(vec![
            (b[0] & 0x7f) as i64,
            b[1] as i64,
            b[2] as i64,
            us(&b[3..6]),
        ]),
        _ => None,
    }
}

/// Python's `isoformat()`; None when a field is out of range.
fn iso_format(kind: &str, f: &[i64], offset_us: Option<i128>) -> Option<String> {
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let date = |y: i64, m: i64, d: i64| -> Option<String> {
        let ok = (1..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d);
        ok.then(|| format!("{y:04}-{m:02}-{d:02}"))
    };
    let time = |h: i64, mi: i64, s: i64, us: i64| -> Option<String> {
        let ok = (0..24).contains(&h)
            && (0..60).contains(&mi)
            && (0..60).contains(&s)
            && (0..1_000_000).contains(&us);
        ok.then(|| {
            if us != 0 {
                format!("{h:02}:{mi:02}:{s:02}.{us:06}")
            } else {
                format!("{h:02}:{mi:02}:{s:02}")
            }
        })
    };
    let mut out = match kind {
        "date" => return date(get(0), get(1), get(2)),
        "time" => time(get(0), get(1), get(2), get(3))?,
        _ => format!(
            "{}T{}",
            date(get(0), get(1), get(2))?,
            time(get(3), get(4), get(5), get(6))?
        ),
    };
    if let Some(off) = offset_us {
        // datetime._format_offset: sign, HH:MM, then :SS and .ffffff only when non-zero.
        if off.abs() >= 86_400_000_000 {
            return None;
        }
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.abs();
        let (secs, us) = (off / 1_000_000, off % 1_000_000);
        out.push_str(&format!("{sign}{:02}:{:02}", secs / 3600, secs / 60 % 60));
        if secs % 60 != 0 || us != 0 {
            out.push_str(&format!(":{:02}", secs % 60));
        }
        if us != 0 {
            out.push_str(&format!(".{us:06}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_formats() {
        assert_eq!(
            iso_format("datetime", &[2020, 1, 2, 3, 4, 5, 6], Some(0)).unwrap(),
            "2020-01-02T03:04:05.000006+00:00"
        );
        assert_eq!(
            iso_format("time", &[1, 2, 3, 4], Some(3_605_000_000)).unwrap(),
            "01:02:03.000004+01:00:05"
        );
        assert_eq!(
            iso_format(
                "datetime",
                &[2020, 1, 2, 3, 4, 5, 0],
                Some(-5 * 3_600_000_000)
            )
            .unwrap(),
            "2020-01-02T03:04:05-05:00"
        );
        assert!(iso_format("date", &[2020, 13, 1], None).is_none());
    }
}
