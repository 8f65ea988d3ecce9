//! The unpickling stack machine. It builds an arena of nodes; memo references and `DUP`
//! copy a small [`Obj`] handle, never a node, so shared values stay shared (as the
//! objects in CPython's memo are) and a memo bomb costs no memory here. Turning the arena
//! into a [`crate::Value`] is `resolve.rs`'s job.
//!
//! Mirrors `pickle._Unpickler` of CPython 3.11 (dispatch per opcode, marks kept apart from
//! the stack like its `metastack`), minus every import and call: GLOBAL pushes a name, and
//! REDUCE/NEWOBJ/OBJ/INST record "an instance of this class built from these args".

use super::ops::*;
use crate::{DecodeLimits, Error, Result};
use num_bigint::BigInt;
use std::collections::HashMap;

const CODEC: &str = "pickle";

/// A stack entry: scalars inline, everything else a node id.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Node(u32),
}

/// A module-qualified name from GLOBAL/STACK_GLOBAL/INST, with Python 2 module names
/// already mapped to Python 3's (`__builtin__`/`exceptions` -> `builtins`, `copy_reg` ->
/// `copyreg`), as `pickle.Unpickler(fix_imports=True)` does for protocol < 3 streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Global {
    pub(crate) module: String,
    pub(crate) name: String,
}

impl Global {
    fn new(module: &str, name: &str) -> Global {
        let module = match module {
            "__builtin__" | "exceptions" => "builtins",
            "copy_reg" => "copyreg",
            m => m,
        };
        // _compat_pickle.NAME_MAPPING: Python 2's StandardError is Exception.
        let name = match (module, name) {
            ("builtins", "StandardError") => "Exception",
            (_, n) => n,
        };
        Global {
            module: module.to_string(),
            name: name.to_string(),
        }
    }

    pub(crate) fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }

    pub(crate) fn dotted(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// How an instance came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// `callable(*args)`: REDUCE, or OBJ/INST with arguments.
    Call,
    /// `cls.__new__(cls, *args)`: NEWOBJ, NEWOBJ_EX, `copyreg._reconstructor`, argument-less
    /// OBJ/INST.
    New,
}

/// An object the pickle builds: its class and everything later opcodes did to it.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) class: Global,
    pub(crate) how: How,
    /// The argument tuple (a node), if any.
    pub(crate) args: Option<Obj>,
    /// The last BUILD state.
    pub(crate) state: Option<Obj>,
    /// APPEND/APPENDS/ADDITEMS applied to the instance.
    pub(crate) items: Vec<Obj>,
    /// SETITEM/SETITEMS applied to the instance (OrderedDict).
    pub(crate) dict_items: Vec<(Obj, Obj)>,
}

/// Arena nodes.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Big(BigInt),
    Str(String),
    /// A Python 2 `str` (bytes); Python 3 decodes it as ASCII by default.
    Py2Str(Vec<u8>),
    Bytes(Vec<u8>),
    Tuple(Vec<Obj>),
    List(Vec<Obj>),
    Dict(Vec<(Obj, Obj)>),
    Set(Vec<Obj>),
    Global(Global),
    Instance(Box<Instance>),
}

/// Globals a REDUCE (or OBJ/INST with arguments) may "call": the registry's constructors
/// and exception classes. Calling anything else is what makes pickle unsafe in Python,
/// so it is refused here even though nothing would be executed.
fn callable_known(g: &Global) -> bool {
    matches!(
        (g.module.as_str(), g.name.as_str()),
        (
            "builtins",
            "set" | "frozenset" | "bytearray" | "bytes" | "complex"
        ) | ("_codecs", "encode")
            | ("decimal", "Decimal")
            | (
                "datetime",
                "datetime" | "date" | "time" | "timedelta" | "timezone"
            )
            | ("collections", "OrderedDict")
            | ("pytz", "_UTC" | "_p")
    ) || super::resolve::is_exception_class(g)
}

pub(crate) struct Arena {
    pub(crate) nodes: Vec<Node>,
    /// Offset of the opcode that made each node, for error messages.
    pub(crate) offsets: Vec<usize>,
}

impl Arena {
    pub(crate) fn get(&self, id: u32) -> &Node {
        // Ids are only ever made by `Vm::add` for nodes pushed right after.
        &self.nodes[id as usize]
    }
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: HashMap<u64, Obj>,
    nodes: Vec<Node>,
    offsets: Vec<usize>,
    limits: DecodeLimits,
}

/// Run the machine to STOP; returns the arena and the root object.
pub(crate) fn run(data: &[u8], limits: &DecodeLimits) -> Result<(Arena, Obj)> {
    let mut vm = Vm {
        data,
        pos: 0,
        op_pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        nodes: Vec::new(),
        offsets: Vec::new(),
        limits: *limits,
    };
    let root = vm.run()?;
    Ok((
        Arena {
            nodes: vm.nodes,
            offsets: vm.offsets,
        },
        root,
    ))
}

/// Bytes of two's complement little-endian a LONG1/LONG4 may have for `max_digits`
/// decimal digits (log10(256) = 2.408 digits per byte), plus slack for the sign byte.
fn max_long_bytes(max_digits: usize) -> usize {
    max_digits.saturating_mul(1000) / 2408 + 2
}

impl<'a> Vm<'a> {
    fn syntax(&self, message: impl Into<String>) -> Error {
        Error::Syntax {
            codec: CODEC,
            message: message.into(),
            offset: self.op_pos,
        }
    }

    fn eof() -> Error {
        Error::Eof { codec: CODEC }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        // Every length is checked against what is left before anything is allocated.
        let data: &'a [u8] = self.data;
        if n > data.len() - self.pos {
            return Err(Self::eof());
        }
        let s = &data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    fn len64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| Self::eof())
    }

    /// A text argument up to (not including) the newline.
    fn line(&mut self) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Self::eof());
        };
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn line_str(&mut self) -> Result<String> {
        let l = self.line()?;
        match std::str::from_utf8(l) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.syntax("text argument is not UTF-8")),
        }
    }

    fn add(&mut self, node: Node) -> Result<Obj> {
        let id = u32::try_from(self.nodes.len()).map_err(|_| self.syntax("too many objects"))?;
        self.nodes.push(node);
        self.offsets.push(self.op_pos);
        Ok(Obj::Node(id))
    }

    fn push_node(&mut self, node: Node) -> Result<()> {
        let o = self.add(node)?;
        self.stack.push(o);
        Ok(())
    }

    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Obj> {
        if self.stack.len() <= self.base() {
            return Err(self.syntax("unpickling stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.syntax("unpickling stack underflow"))
    }

    fn top(&self) -> Result<Obj> {
        if self.stack.len() <= self.base() {
            return Err(self.syntax("unpickling stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.syntax("unpickling stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Obj>> {
        let Some(m) = self.marks.pop() else {
            return Err(self.syntax("could not find MARK"));
        };
        Ok(self.stack.split_off(m))
    }

    fn node_mut(&mut self, o: Obj) -> Option<&mut Node> {
        match o {
            Obj::Node(id) => self.nodes.get_mut(id as usize),
            _ => None,
        }
    }

    fn type_of(&self, o: Obj) -> &'static str {
        match o {
            Obj::None => "NoneType",
            Obj::Bool(_) => "bool",
            Obj::Int(_) => "int",
            Obj::Float(_) => "float",
            Obj::Node(id) => match &self.nodes[id as usize] {
                Node::Big(_) => "int",
                Node::Str(_) | Node::Py2Str(_) => "str",
                Node::Bytes(_) => "bytes",
                Node::Tuple(_) => "tuple",
                Node::List(_) => "list",
                Node::Dict(_) => "dict",
                Node::Set(_) => "set",
                Node::Global(_) => "global",
                Node::Instance(_) => "object",
            },
        }
    }

    fn memo_get(&mut self, idx: u64) -> Result<()> {
        match self.memo.get(&idx) {
            Some(&o) => {
                self.stack.push(o);
                Ok(())
            }
            None => Err(self.syntax(format!("memo value not found at index {idx}"))),
        }
    }

    fn memo_put(&mut self, idx: u64) -> Result<()> {
        let o = self.top()?;
        self.memo.insert(idx, o);
        Ok(())
    }

    fn text_index(&mut self) -> Result<u64> {
        let l = self.line()?;
        let parsed = std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        parsed.ok_or_else(|| self.syntax("bad memo index"))
    }

    fn int_text(&mut self, text: &[u8]) -> Result<Obj> {
        let s = std::str::from_utf8(text)
            .map_err(|_| self.syntax("bad int text"))?
            .trim();
        let digits = s.trim_start_matches(['-', '+']).len();
        if digits > self.limits.max_int_digits {
            return Err(Error::IntTooLarge {
                codec: CODEC,
                limit: self.limits.max_int_digits,
                offset: self.op_pos,
            });
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Obj::Int(i));
        }
        let b: BigInt = s
            .parse()
            .map_err(|_| self.syntax(format!("invalid int literal {s:?}")))?;
        self.big(b)
    }

    fn big(&mut self, b: BigInt) -> Result<Obj> {
        match i64::try_from(&b) {
            Ok(i) => Ok(Obj::Int(i)),
            Err(_) => self.add(Node::Big(b)),
        }
    }

    fn long_bytes(&mut self, n: usize) -> Result<()> {
        if n > max_long_bytes(self.limits.max_int_digits) {
            return Err(Error::IntTooLarge {
                codec: CODEC,
                limit: self.limits.max_int_digits,
                offset: self.op_pos,
            });
        }
        let bytes = self.take(n)?;
        let b = BigInt::from_signed_bytes_le(bytes);
        let o = self.big(b)?;
        self.stack.push(o);
        Ok(())
    }

    fn unicode(&mut self, n: usize) -> Result<()> {
        let bytes = self.take(n)?;
        // Python decodes with 'surrogatepass'; a lone surrogate has no Rust String form.
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                return Err(
                    self.syntax("str is not valid UTF-8 (lone surrogates are not supported)")
                )
            }
        };
        self.push_node(Node::Str(s))
    }

    fn bytes(&mut self, n: usize) -> Result<()> {
        let b = self.take(n)?.to_vec();
        self.push_node(Node::Bytes(b))
    }

    fn py2str(&mut self, n: usize) -> Result<()> {
        let b = self.take(n)?.to_vec();
        self.push_node(Node::Py2Str(b))
    }

    fn instance(&mut self, class: Global, how: How, args: Option<Obj>) -> Result<()> {
        self.push_node(Node::Instance(Box::new(Instance {
            class,
            how,
            args,
            state: None,
            items: Vec::new(),
            dict_items: Vec::new(),
        })))
    }

    fn global_of(&self, o: Obj, what: &str) -> Result<Global> {
        match o {
            Obj::Node(id) => match &self.nodes[id as usize] {
                Node::Global(g) => Ok(g.clone()),
                _ => Err(self.syntax(format!("{what} of a {}, not a class", self.type_of(o)))),
            },
            _ => Err(self.syntax(format!("{what} of a {}, not a class", self.type_of(o)))),
        }
    }

    fn tuple_items(&self, o: Obj) -> Option<&[Obj]> {
        match o {
            Obj::Node(id) => match &self.nodes[id as usize] {
                Node::Tuple(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// REDUCE and OBJ/INST with arguments: `callable(*args)`.
    fn call(&mut self, callable: Global, args: Obj) -> Result<()> {
        if self.tuple_items(args).is_none() {
            return Err(self.syntax("REDUCE arguments are not a tuple"));
        }
        if callable.is("copyreg", "_reconstructor") {
            // copyreg._reconstructor(cls, base, state): protocol 0/1 for new-style
            // objects, i.e. `base.__new__(cls, state)`; the class is what matters.
            let first = self.tuple_items(args).and_then(|t| t.first().copied());
            let Some(first) = first else {
                return Err(self.syntax("copyreg._reconstructor without a class"));
            };
            let class = self.global_of(first, "copyreg._reconstructor")?;
            return self.instance(class, How::New, None);
        }
        if !callable_known(&callable) {
            return Err(self.syntax(format!(
                "refusing to call unknown global {} (unpickling it would run code)",
                callable.dotted()
            )));
        }
        self.instance(callable, How::Call, Some(args))
    }

    fn run(&mut self) -> Result<Obj> {
        loop {
            self.op_pos = self.pos;
            let op = self.u8()?;
            match op {
                PROTO => {
                    let v = self.u8()?;
                    if v > super::HIGHEST_PROTOCOL {
                        return Err(self.syntax(format!("unsupported pickle protocol: {v}")));
                    }
                }
                FRAME => {
                    // Frames only group bytes for buffered reading; the content follows.
                    let n = self.len64()?;
                    if n > self.data.len() - self.pos {
                        return Err(Self::eof());
                    }
                }
                STOP => return self.pop(),
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    // pickle.py's load_pop: an empty stack above the mark pops the mark.
                    if self.stack.len() > self.base() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                POP_MARK => {
                    self.pop_mark()?;
                }
                DUP => {
                    let o = self.top()?;
                    self.stack.push(o);
                }
                NONE => self.stack.push(Obj::None),
                NEWTRUE => self.stack.push(Obj::Bool(true)),
                NEWFALSE => self.stack.push(Obj::Bool(false)),
                INT => {
                    let l = self.line()?.to_vec();
                    let o = match l.as_slice() {
                        b"01" => Obj::Bool(true),
                        b"00" => Obj::Bool(false),
                        t => self.int_text(t)?,
                    };
                    self.stack.push(o);
                }
                LONG => {
                    let mut l = self.line()?.to_vec();
                    if l.last() == Some(&b'L') {
                        l.pop();
                    }
                    let o = self.int_text(&l)?;
                    self.stack.push(o);
                }
                BININT => {
                    let v = i32::from_le_bytes(self.take_array()?);
                    self.stack.push(Obj::Int(v as i64));
                }
                BININT1 => {
                    let v = self.u8()?;
                    self.stack.push(Obj::Int(v as i64));
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.take_array()?);
                    self.stack.push(Obj::Int(v as i64));
                }
                LONG1 => {
                    let n = self.u8()? as usize;
                    self.long_bytes(n)?;
                }
                LONG4 => {
                    let n = i32::from_le_bytes(self.take_array()?);
                    let n = usize::try_from(n)
                        .map_err(|_| self.syntax("LONG pickle has negative byte count"))?;
                    self.long_bytes(n)?;
                }
                FLOAT => {
                    let l = self.line()?;
                    let f = std::str::from_utf8(l)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok());
                    let f = f.ok_or_else(|| self.syntax("bad FLOAT text"))?;
                    self.stack.push(Obj::Float(f));
                }
                BINFLOAT => {
                    // The one big-endian field of the format.
                    let f = f64::from_be_bytes(self.take_array()?);
                    self.stack.push(Obj::Float(f));
                }
                STRING => {
                    let l = self.line()?.to_vec();
                    let inner = match l.as_slice() {
                        [q, inner @ .., q2] if q == q2 && (*q == b'\'' || *q == b'"') => inner,
                        _ => return Err(self.syntax("the STRING opcode argument must be quoted")),
                    };
                    let b = escape_decode(inner).map_err(|m| self.syntax(m))?;
                    self.push_node(Node::Py2Str(b))?;
                }
                BINSTRING => {
                    let n = i32::from_le_bytes(self.take_array()?);
                    let n = usize::try_from(n)
                        .map_err(|_| self.syntax("BINSTRING pickle has negative byte count"))?;
                    self.py2str(n)?;
                }
                SHORT_BINSTRING => {
                    let n = self.u8()? as usize;
                    self.py2str(n)?;
                }
                UNICODE => {
                    let l = self.line()?.to_vec();
                    let s = raw_unicode_escape(&l).map_err(|m| self.syntax(m))?;
                    self.push_node(Node::Str(s))?;
                }
                SHORT_BINUNICODE => {
                    let n = self.u8()? as usize;
                    self.unicode(n)?;
                }
                BINUNICODE => {
                    let n = self.u32()? as usize;
                    self.unicode(n)?;
                }
                BINUNICODE8 => {
                    let n = self.len64()?;
                    self.unicode(n)?;
                }
                SHORT_BINBYTES => {
                    let n = self.u8()? as usize;
                    self.bytes(n)?;
                }
                BINBYTES => {
                    let n = self.u32()? as usize;
                    self.bytes(n)?;
                }
                BINBYTES8 | BYTEARRAY8 => {
                    let n = self.len64()?;
                    self.bytes(n)?;
                }
                NEXT_BUFFER | READONLY_BUFFER => {
                    return Err(self.syntax(
                        "out-of-band buffers (pickle protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported",
                    ))
                }
                PERSID | BINPERSID => {
                    return Err(self.syntax("persistent ids (PERSID/BINPERSID) are not supported"))
                }
                EXT1 | EXT2 | EXT4 => {
                    return Err(self.syntax("the copyreg extension registry (EXT1/EXT2/EXT4) is not supported"))
                }
                EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new()))?,
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = (op - TUPLE1 + 1) as usize;
                    let mut items = [Obj::None; 3];
                    for i in (0..n).rev() {
                        items[i] = self.pop()?;
                    }
                    self.push_node(Node::Tuple(items[..n].to_vec()))?;
                }
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Tuple(items))?;
                }
                EMPTY_LIST => self.push_node(Node::List(Vec::new()))?,
                LIST => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::List(items))?;
                }
                EMPTY_DICT => self.push_node(Node::Dict(Vec::new()))?,
                DICT => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items).map_err(|m| self.syntax(m))?;
                    self.push_node(Node::Dict(pairs))?;
                }
                EMPTY_SET => self.push_node(Node::Set(Vec::new()))?,
                FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Set(items))?;
                }
                APPEND => {
                    let v = self.pop()?;
                    let target = self.top()?;
                    self.extend(target, vec![v], "APPEND")?;
                }
                APPENDS => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.extend(target, items, "APPENDS")?;
                }
                ADDITEMS => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.extend(target, items, "ADDITEMS")?;
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![(k, v)])?;
                }
                SETITEMS => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items).map_err(|m| self.syntax(m))?;
                    let target = self.top()?;
                    self.set_items(target, pairs)?;
                }
                GET => {
                    let i = self.text_index()?;
                    self.memo_get(i)?;
                }
                BINGET => {
                    let i = self.u8()?;
                    self.memo_get(i as u64)?;
                }
                LONG_BINGET => {
                    let i = self.u32()?;
                    self.memo_get(i as u64)?;
                }
                PUT => {
                    let i = self.text_index()?;
                    self.memo_put(i)?;
                }
                BINPUT => {
                    let i = self.u8()?;
                    self.memo_put(i as u64)?;
                }
                LONG_BINPUT => {
                    let i = self.u32()?;
                    self.memo_put(i as u64)?;
                }
                MEMOIZE => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                GLOBAL => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    self.push_node(Node::Global(Global::new(&module, &name)))?;
                }
                STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (self.text_of(module), self.text_of(name)) else {
                        return Err(self.syntax("STACK_GLOBAL requires str"));
                    };
                    let g = Global::new(&m, &n);
                    self.push_node(Node::Global(g))?;
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let g = self.global_of(callable, "REDUCE")?;
                    self.call(g, args)?;
                }
                NEWOBJ => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let g = self.global_of(cls, "NEWOBJ")?;
                    self.instance(g, How::New, Some(args))?;
                }
                NEWOBJ_EX => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let g = self.global_of(cls, "NEWOBJ_EX")?;
                    self.instance(g, How::New, Some(args))?;
                }
                OBJ => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.syntax("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let g = self.global_of(cls, "OBJ")?;
                    self.inst_or_call(g, items)?;
                }
                INST => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let items = self.pop_mark()?;
                    self.inst_or_call(Global::new(&module, &name), items)?;
                }
                BUILD => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    let ty = self.type_of(target);
                    match self.node_mut(target) {
                        Some(Node::Instance(inst)) => inst.state = Some(state),
                        _ => return Err(self.syntax(format!("BUILD on a {ty}"))),
                    }
                }
                other => {
                    return Err(self.syntax(format!("invalid load key, '\\x{other:02x}'")));
                }
            }
        }
    }

    fn text_of(&self, o: Obj) -> Option<String> {
        match o {
            Obj::Node(id) => match &self.nodes[id as usize] {
                Node::Str(s) => Some(s.clone()),
                Node::Py2Str(b) if b.is_ascii() => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            },
            _ => None,
        }
    }

    /// OBJ/INST: `cls(*args)`; with no args it is object creation (Python 2 old-style
    /// instances), otherwise a call like REDUCE.
    fn inst_or_call(&mut self, g: Global, args: Vec<Obj>) -> Result<()> {
        if args.is_empty() {
            return self.instance(g, How::New, None);
        }
        let t = self.add(Node::Tuple(args))?;
        self.call(g, t)
    }

    fn extend(&mut self, target: Obj, items: Vec<Obj>, op: &str) -> Result<()> {
        let ty = self.type_of(target);
        match (self.node_mut(target), op) {
            (Some(Node::List(l)), "APPEND" | "APPENDS") => l.extend(items),
            (Some(Node::Set(s)), "ADDITEMS") => s.extend(items),
            // A list/set subclass or any object with append/extend/add.
            (Some(Node::Instance(inst)), _) => inst.items.extend(items),
            _ => return Err(self.syntax(format!("{op} on a {ty}"))),
        }
        Ok(())
    }

    fn set_items(&mut self, target: Obj, pairs: Vec<(Obj, Obj)>) -> Result<()> {
        let ty = self.type_of(target);
        match self.node_mut(target) {
            Some(Node::Dict(d)) => d.extend(pairs),
            Some(Node::Instance(inst)) => inst.dict_items.extend(pairs),
            _ => return Err(self.syntax(format!("SETITEM on a {ty}"))),
        }
        Ok(())
    }
}

fn pairs(items: Vec<Obj>) -> std::result::Result<Vec<(Obj, Obj)>, String> {
    if items.len() % 2 != 0 {
        return Err("odd number of items for a dict".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// `codecs.escape_decode`, which Python's unpickler applies to a quoted STRING argument.
fn escape_decode(s: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err("trailing \\ in STRING".into());
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b't' => out.push(9),
            b'n' => out.push(10),
            b'v' => out.push(11),
            b'f' => out.push(12),
            b'r' => out.push(13),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = s.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(v) = v else {
                    return Err("invalid \\x escape in STRING".into());
                };
                out.push(v);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// The `raw-unicode-escape` codec (UNICODE argument): latin-1 bytes except `\uXXXX` and
/// `\UXXXXXXXX`.
fn raw_unicode_escape(s: &[u8]) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' {
            let width = match s.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if width > 0 {
                let hex = s
                    .get(i + 2..i + 2 + width)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                let Some(cp) = hex else {
                    return Err("truncated \\uXXXX escape in UNICODE".into());
                };
                let Some(ch) = char::from_u32(cp) else {
                    return Err("UNICODE escape is a lone surrogate or out of range".into());
                };
                out.push(ch);
                i += 2 + width;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_decode(br"a\x41\101\n\'\q").unwrap(), b"aAA\n'\\q");
        assert!(escape_decode(b"\\").is_err());
        assert_eq!(
            raw_unicode_escape(b"\\u20ac\xe9x").unwrap(),
            "\u{20ac}\u{e9}x"
        );
        assert!(raw_unicode_escape(b"\\ud800").is_err());
    }

    #[test]
    fn long_byte_cap_covers_the_digit_limit() {
        // 256**n has about 2.408 n digits: 4300 digits fit in 1786 bytes.
        assert!(max_long_bytes(4300) >= 1786);
        assert!(max_long_bytes(4300) < 1800);
    }
}
