//! serpent straight to and from Python objects.
//!
//! Decoding: [`PyBuilder`] is a [`Builder`] for the shared serpent parser that makes
//! Python objects as the parser finds them (no intermediate value tree; the jiter
//! pattern). Encoding: a walker over Python objects that writes serpent 1.43's text for
//! the exact builtin types itself and hands every other object back to the Python
//! `Serializer._serialize_other`, which follows serpent's dispatch order (registered
//! classes, datetime, Decimal, exceptions, class instances ...) and writes through the
//! same [`Output`].

use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList,
    PyMemoryView, PySet, PyString, PyTuple,
};
use pyo3::Borrowed;
use pyro_codec::serpent::{self, AsciiStr, Builder, EncodeOptions};
use pyro_codec::{DecodeLimits, Value};
use pyro_runtime::daemon::CallContext;
use std::cell::RefCell;
use std::collections::HashSet;
use std::thread::LocalKey;
use std::vec::Drain;

create_exception!(
    _native,
    SerpentParseError,
    pyo3::exceptions::PyValueError,
    "The Rust serpent parser refused the input (the Python layer then asks ast.literal_eval, \
     so the caller sees exactly serpent's own error)."
);

/// Makes Python objects for the parser. A Python error (an unhashable dict key, say) is
/// kept here and the parse is stopped with a placeholder codec error.
struct PyBuilder<'py> {
    py: Python<'py>,
    err: Option<PyErr>,
    /// Set when any string `__class__` was made: only then can the payload hold a class
    /// dict for Pyro4's `recreate_classes`.
    class_key: bool,
    cache: StrCache,
}

impl Drop for PyBuilder<'_> {
    fn drop(&mut self) {
        put_back(&STR_CACHE, std::mem::take(&mut self.cache));
    }
}

/// Take this thread's kept value out of `slot` (the default when none is kept, the slot
/// is in use by a caller further up, or the thread is being torn down).
fn take_kept<T: Default>(slot: &'static LocalKey<RefCell<T>>) -> T {
    slot.try_with(|c| c.try_borrow_mut().map(|mut c| std::mem::take(&mut *c)).ok())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keep `value` in this thread's `slot` for the next [`take_kept`] (dropped instead when
/// the slot is in use or the thread is being torn down).
fn put_back<T>(slot: &'static LocalKey<RefCell<T>>, value: T) {
    let _ = slot.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = value;
        }
    });
}

type Out<'py> = Bound<'py, PyAny>;

/// Text from this many bytes on is made into a str by [`new_str`]'s copy when it is ASCII.
const ASCII_COPY_MIN: usize = 64;

/// A str holding `text`. Long ASCII text is copied straight into a new one-byte str
/// (`PyUnicode_New` with 127 as the largest character, then its character data):
/// `PyUnicode_FromStringAndSize` (`PyString::new`) would decode it as UTF-8 first.
pub(crate) fn new_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    if text.len() < ASCII_COPY_MIN {
        return Ok(PyString::new(py, text));
    }
    match AsciiStr::new(text) {
        Some(ascii) => new_ascii_str(py, ascii),
        _ => Ok(PyString::new(py, text)),
    }
}

/// [`new_str`] for text known to be all ASCII.
fn new_ascii_str<'py>(py: Python<'py>, text: AsciiStr<'_>) -> PyResult<Bound<'py, PyString>> {
    let bytes = text.as_str().as_bytes();
    let len = pyo3::ffi::Py_ssize_t::try_from(bytes.len())
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("string too long"))?;
    // SAFETY: the GIL is held (`py`). `PyUnicode_New(len, 127)` returns a new reference to
    // a compact ASCII str with room for `len` one-byte characters (its terminating NUL
    // already written), or null with an exception set. Its character data
    // (`PyUnicode_1BYTE_DATA`) is valid for `len` bytes and the str is not shared yet, so
    // filling it with `len` ASCII bytes (an `AsciiStr` is only ever made of checked ASCII
    // text: `AsciiStr::new` or the parser's ASCII checks) makes a valid str, the way
    // CPython's own constructors fill one they have just made.
    #[allow(unsafe_code)]
    unsafe {
        let obj = pyo3::ffi::PyUnicode_New(len, 127);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let data = pyo3::ffi::PyUnicode_1BYTE_DATA(obj);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        Ok(Bound::from_owned_ptr(py, obj).cast_into_unchecked())
    }
}

/// Strings up to this many UTF-8 bytes go through the [`StrCache`].
const STR_CACHE_MAX: usize = 16;
/// Slots of the [`StrCache`] (a power of two).
const STR_CACHE_SLOTS: usize = 256;

/// Short str objects the parser made recently on this thread, by content (direct-mapped):
/// serpent documents repeat their dict keys, and a str made before (its hash already
/// computed by the dict it went into) costs a lookup instead of a new object plus a hash.
/// str objects are immutable, so sharing one is invisible to Python code.
#[derive(Default)]
struct StrCache {
    slots: Vec<Option<CachedStr>>,
}

/// One [`StrCache`] slot: the text's length and bytes, and its str object.
struct CachedStr {
    len: u8,
    bytes: [u8; STR_CACHE_MAX],
    obj: Py<PyString>,
}

impl StrCache {
    fn slot(text: &[u8]) -> usize {
        let mut word = [0u8; STR_CACHE_MAX];
        word[..text.len()].copy_from_slice(text);
        let lo = u64::from_le_bytes(word[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(word[8..].try_into().unwrap_or_default());
        let mixed =
            (lo ^ hi.rotate_left(29) ^ text.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 56) as usize % STR_CACHE_SLOTS
    }

    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
        let bytes = text.as_bytes();
        if bytes.len() > STR_CACHE_MAX {
            return new_str(py, text);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(STR_CACHE_SLOTS, || None);
        }
        let slot = &mut self.slots[Self::slot(bytes)];
        if let Some(c) = slot {
            if usize::from(c.len) == bytes.len() && &c.bytes[..bytes.len()] == bytes {
                return Ok(c.obj.bind(py).clone());
            }
        }
        let obj = PyString::new(py, text);
        let mut kept = [0u8; STR_CACHE_MAX];
        kept[..bytes.len()].copy_from_slice(bytes);
        *slot = Some(CachedStr {
            // Fits: bytes.len() <= STR_CACHE_MAX.
            len: bytes.len() as u8,
            bytes: kept,
            obj: obj.clone().unbind(),
        });
        Ok(obj)
    }
}

thread_local! {
    static STR_CACHE: RefCell<StrCache> = RefCell::new(StrCache::default());
}

impl<'py> PyBuilder<'py> {
    /// A builder using this thread's [`StrCache`] (a fresh one if it is in use).
    fn new(py: Python<'py>) -> Self {
        let cache = take_kept(&STR_CACHE);
        PyBuilder {
            py,
            err: None,
            class_key: false,
            cache,
        }
    }

    fn keep<T>(&mut self, r: PyResult<T>) -> pyro_codec::Result<T> {
        r.map_err(|e| {
            self.err = Some(e);
            pyro_codec::Error::Shape("python error".into())
        })
    }
}

impl<'py> Builder for PyBuilder<'py> {
    type Out = Out<'py>;
    fn none(&mut self) -> pyro_codec::Result<Out<'py>> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn bool(&mut self, v: bool) -> pyro_codec::Result<Out<'py>> {
        Ok(PyBool::new(self.py, v).to_owned().into_any())
    }
    fn int(&mut self, v: i64) -> pyro_codec::Result<Out<'py>> {
        Ok(PyInt::new(self.py, v).into_any())
    }
    fn bigint(&mut self, v: num_bigint::BigInt) -> pyro_codec::Result<Out<'py>> {
        let r = (&v).into_pyobject(self.py).map(|o| o.into_any());
        self.keep(r)
    }
    fn float(&mut self, v: f64) -> pyro_codec::Result<Out<'py>> {
        Ok(PyFloat::new(self.py, v).into_any())
    }
    fn complex(&mut self, re: f64, im: f64) -> pyro_codec::Result<Out<'py>> {
        Ok(PyComplex::from_doubles(self.py, re, im).into_any())
    }
    fn str(&mut self, v: &str) -> pyro_codec::Result<Out<'py>> {
        if v == "__class__" {
            self.class_key = true;
        }
        let r = self.cache.get(self.py, v).map(Bound::into_any);
        self.keep(r)
    }
    fn ascii_str(&mut self, v: AsciiStr<'_>) -> pyro_codec::Result<Out<'py>> {
        if v.as_str().len() < ASCII_COPY_MIN {
            return self.str(v.as_str());
        }
        let r = new_ascii_str(self.py, v).map(Bound::into_any);
        self.keep(r)
    }
    fn bytes(&mut self, v: &[u8]) -> pyro_codec::Result<Out<'py>> {
        Ok(PyBytes::new(self.py, v).into_any())
    }
    fn tuple(&mut self, items: Drain<'_, Out<'py>>) -> pyro_codec::Result<Out<'py>> {
        let r = PyTuple::new(self.py, items).map(|t| t.into_any());
        self.keep(r)
    }
    fn list(&mut self, items: Drain<'_, Out<'py>>) -> pyro_codec::Result<Out<'py>> {
        let r = PyList::new(self.py, items).map(|t| t.into_any());
        self.keep(r)
    }
    fn set(&mut self, items: Drain<'_, Out<'py>>) -> pyro_codec::Result<Out<'py>> {
        // Python's set keeps the first of equal elements, as literal_eval's does.
        let r = PySet::new(self.py, items).map(|t| t.into_any());
        self.keep(r)
    }
    fn dict(&mut self, mut items: Drain<'_, Out<'py>>) -> pyro_codec::Result<Out<'py>> {
        let d = PyDict::new(self.py);
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            // PyDict keeps the first key object and the last value, like a dict display.
            let r = d.set_item(k, v);
            self.keep(r)?;
        }
        Ok(d.into_any())
    }
}

/// Parse serpent bytes straight into Python objects. Input the Rust parser refuses
/// raises `SerpentParseError`; Python errors (unhashable keys) propagate as they are.
#[pyfunction]
pub(crate) fn serpent_parse<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut b = PyBuilder::new(py);
    let result = serpent::parse_with(data, &DecodeLimits::default(), &mut b);
    if let Some(e) = b.err.take() {
        return Err(e);
    }
    result.map_err(|e| SerpentParseError::new_err(e.to_string()))
}

/// A serpent reply payload as Pyro4's `SerpentSerializer.loads` gives it: parsed straight
/// into Python objects, then class dicts handed to `dict_to_class` by Pyro4's
/// `recreate_classes` walk (only when the payload holds a `__class__` string at all).
/// `Ok(None)` when the parser refuses the input: the caller then decodes it the slow way
/// for the exact error.
pub(crate) fn parse_reply<'py>(
    py: Python<'py>,
    data: &[u8],
    limits: &DecodeLimits,
    dict_to_class: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut b = PyBuilder::new(py);
    let result = serpent::parse_with(data, limits, &mut b);
    if let Some(e) = b.err.take() {
        return Err(e);
    }
    match result {
        Ok(v) if b.class_key => recreate_classes(&v, dict_to_class).map(Some),
        Ok(v) => Ok(Some(v)),
        Err(_) => Ok(None),
    }
}

/// A serpent call payload as the daemon's `SerpentSerializer.loadsCall` gives it, for
/// `method`: the vargs as the call's argument tuple and the kwargs (`None` when empty),
/// both through Pyro4's `recreate_classes` walk (only when the payload holds a
/// `__class__` string). `None` when the payload is not exactly such a call (the parser
/// refuses it, another shape, another method name, a class dict that fails to convert):
/// the caller then takes the value path, which reports the error as it always has.
pub(crate) fn parse_call<'py>(
    py: Python<'py>,
    data: &[u8],
    limits: &DecodeLimits,
    method: &str,
    dict_to_class: &Bound<'py, PyAny>,
) -> Option<(Bound<'py, PyTuple>, Option<Bound<'py, PyDict>>)> {
    let mut b = PyBuilder::new(py);
    let parsed = serpent::parse_with(data, limits, &mut b).ok()?;
    if b.err.is_some() {
        return None;
    }
    let call = parsed.cast_exact::<PyTuple>().ok()?;
    if call.len() != 4
        || call
            .get_item(1)
            .ok()?
            .cast_exact::<PyString>()
            .ok()?
            .to_str()
            .ok()?
            != method
    {
        return None;
    }
    let (mut vargs, mut kwargs) = (call.get_item(2).ok()?, call.get_item(3).ok()?);
    if b.class_key {
        vargs = recreate_classes(&vargs, dict_to_class).ok()?;
        kwargs = recreate_classes(&kwargs, dict_to_class).ok()?;
    }
    let args = if let Ok(t) = vargs.cast_exact::<PyTuple>() {
        t.clone()
    } else {
        PyTuple::new(py, vargs.cast_exact::<PyList>().ok()?.iter()).ok()?
    };
    let kwargs = if kwargs.is_none() {
        None
    } else {
        let d = kwargs.cast_into_exact::<PyDict>().ok()?;
        (!d.is_empty()).then_some(d)
    };
    Some((args, kwargs))
}

/// Pyro4's `SerializerBase.recreate_classes` over Python objects: exact sets, lists,
/// tuples and dicts are rebuilt with their items recreated, a dict with a `__class__`
/// key goes to `dict_to_class` as it is (its contents are not recreated), anything else
/// stays. The depth is the parser's, which is bounded by the decode limits.
fn recreate_classes<'py>(
    obj: &Bound<'py, PyAny>,
    dict_to_class: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let again = |x: Bound<'py, PyAny>| recreate_classes(&x, dict_to_class);
    if let Ok(l) = obj.cast_exact::<PyList>() {
        let items = l.iter().map(again).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(py, items)?.into_any());
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        if d.contains(pyo3::intern!(py, "__class__"))? {
            return dict_to_class.call1((d,));
        }
        let out = PyDict::new(py);
        for (k, v) in d.iter() {
            out.set_item(k, again(v)?)?;
        }
        return Ok(out.into_any());
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        let items = t.iter().map(again).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyTuple::new(py, items)?.into_any());
    }
    if let Ok(s) = obj.cast_exact::<PySet>() {
        let out = PySet::empty(py)?;
        for x in s.iter() {
            out.add(again(x)?)?;
        }
        return Ok(out.into_any());
    }
    Ok(obj.clone())
}

/// The serpent payload of one call, `(object, method, vargs, kwargs)` with `vargs` as a
/// tuple, written into `buf` exactly as the value codec would write it, when `args` (a
/// tuple or list) and `kwargs` hold only exact builtin types. `Ok(false)` means "not
/// written": the caller then takes the value path, which handles (or refuses) the rest.
pub(crate) fn write_call(
    buf: &mut Vec<u8>,
    object: &str,
    method: &str,
    args: &Bound<'_, PyAny>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<bool> {
    let mut w = FastWriter::new(args.py(), std::mem::take(buf), false, CALL_MAX_LEVEL, true);
    let done = w.call(object, method, args, kwargs);
    *buf = std::mem::take(&mut w.buf);
    done
}

/// The payload [`write_call`] makes for these arguments, or None where it leaves the call
/// to the value path: for the tests, which compare it with serpent's own `dumps`.
#[pyfunction]
#[pyo3(signature = (object, method, args, kwargs))]
pub(crate) fn _serpent_call_payload<'py>(
    py: Python<'py>,
    object: &str,
    method: &str,
    args: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let mut buf = Vec::new();
    Ok(write_call(&mut buf, object, method, args, kwargs)?.then(|| PyBytes::new(py, &buf)))
}

/// Results up to this size are copied out of the thread's kept buffer into a fresh one:
/// the allocator serves that from its free lists. A larger result keeps the buffer it was
/// written in, and the thread takes the connection's spare buffer in exchange
/// ([`CallContext::take_buffer`]; the daemon keeps each large reply's buffer as the next
/// spare), so a stream of large results reuses two buffers instead of mapping and faulting
/// in new memory each call.
const COPY_RESULT_MAX: usize = 64 * 1024;

/// A daemon call's result as a serpent payload (Pyro4's `SerpentSerializer.dumps`:
/// serpent's text for builtins is the same with or without `module_in_classname`), when
/// it is made only of exact builtins; None leaves it to the value path.
pub(crate) fn write_result(value: &Bound<'_, PyAny>, ctx: &CallContext) -> Option<Vec<u8>> {
    let mut w = FastWriter::new(value.py(), take_out_buf(), false, CALL_MAX_LEVEL, false);
    w.buf.extend_from_slice(serpent::HEADER);
    let written = matches!(w.value(value, 0), Ok(true));
    let buf = std::mem::take(&mut w.buf);
    if !written {
        keep_out_buf(buf);
        return None;
    }
    if buf.len() <= COPY_RESULT_MAX {
        let out = buf.clone();
        keep_out_buf(buf);
        return Some(out);
    }
    keep_out_buf(ctx.take_buffer());
    Some(buf)
}

/// The value path's nesting limit (convert.rs), so both paths agree on what is too deep.
const CALL_MAX_LEVEL: usize = 200;

/// The output stream a serpent `Serializer` writes to (the `outputstream` registered
/// class serializers receive), plus the ids of the containers being written (serpent's
/// `serialized_obj_ids`, for cycle detection across Rust and Python writers).
#[pyclass(module = "pyro_rs._native", name = "SerpentOutput")]
#[derive(Default)]
pub(crate) struct Output {
    buf: Vec<u8>,
    ids: HashSet<usize>,
}

#[pymethods]
impl Output {
    #[new]
    fn new() -> Self {
        Output::default()
    }

    /// Append text (used by Python-level writers).
    fn append(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Everything written so far.
    fn getvalue<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.buf)
    }

    /// Start writing a container: ValueError("Circular reference detected (kind)") when
    /// it is already being written.
    fn enter(&mut self, obj: &Bound<'_, PyAny>, kind: &str) -> PyResult<()> {
        if !self.ids.insert(obj.as_ptr() as usize) {
            return Err(PyValueError::new_err(format!(
                "Circular reference detected ({kind})"
            )));
        }
        Ok(())
    }

    /// Done writing a container.
    fn leave(&mut self, obj: &Bound<'_, PyAny>) {
        self.ids.remove(&(obj.as_ptr() as usize));
    }
}

const TOO_DEEP: &str = "Object graph nesting too deep. Increase serializer.maximum_level if you \
                        think you need more,  but this may cause a RecursionError instead if \
                        Python's recursion limit doesn't allow it.";

/// Walks Python objects for one `Serializer`.
struct Walker<'a, 'py> {
    ser: &'a Bound<'py, PyAny>,
    out: &'a Bound<'py, Output>,
    indent: bool,
    bytes_repr: bool,
    max_level: usize,
}

/// Which builtin container rule to apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tuple,
    List,
    Dict,
    Set,
}

impl<'a, 'py> Walker<'a, 'py> {
    fn new(ser: &'a Bound<'py, PyAny>, out: &'a Bound<'py, Output>) -> PyResult<Self> {
        Ok(Walker {
            ser,
            out,
            indent: ser.getattr("indent")?.is_truthy()?,
            bytes_repr: ser.getattr("bytes_repr")?.is_truthy()?,
            max_level: ser.getattr("maximum_level")?.extract()?,
        })
    }

    fn w(&self, b: &[u8]) {
        self.out.borrow_mut().buf.extend_from_slice(b);
    }

    /// Write a scalar the way the shared encoder does (float repr, bytes rules).
    fn scalar(&self, v: &Value) -> PyResult<()> {
        let opts = EncodeOptions {
            indent: false,
            bytes_repr: self.bytes_repr,
        };
        let bytes =
            serpent::to_vec_with(v, &opts).map_err(|e| PyValueError::new_err(e.to_string()))?;
        self.w(&bytes[serpent::HEADER.len()..]);
        Ok(())
    }

    /// serpent's `_serialize`: steps 1, 3 and 4 of its dispatch here, the rest in Python.
    fn value(&self, obj: &Bound<'py, PyAny>, level: usize) -> PyResult<()> {
        if level > self.max_level {
            return Err(PyValueError::new_err(TOO_DEEP));
        }
        if let Ok(b) = obj.cast_exact::<PyBytes>() {
            return self.scalar(&Value::Bytes(b.as_bytes().to_vec()));
        }
        if obj.is_exact_instance_of::<PyByteArray>() || obj.is_exact_instance_of::<PyMemoryView>() {
            let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
            let b = b.cast::<PyBytes>()?;
            return self.scalar(&Value::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(s) = obj.cast_exact::<PyString>() {
            return self.string(s);
        }
        if obj.is_exact_instance_of::<PyBool>() {
            self.w(if obj.is_truthy()? { b"True" } else { b"False" });
            return Ok(());
        }
        if obj.is_exact_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                self.w(i.to_string().as_bytes());
            } else {
                // repr() enforces Python's int digit limit (ValueError), as serpent does.
                self.w(obj.repr()?.to_cow()?.as_bytes());
            }
            return Ok(());
        }
        if obj.is_none() {
            self.w(b"None");
            return Ok(());
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            return self.scalar(&Value::Float(f.value()));
        }
        if let Ok(c) = obj.cast_exact::<PyComplex>() {
            return self.complex(c.real(), c.imag());
        }
        if obj.is_exact_instance_of::<PyTuple>() {
            return self.container(obj, level, Kind::Tuple);
        }
        if obj.is_exact_instance_of::<PyList>() {
            return self.container(obj, level, Kind::List);
        }
        if obj.is_exact_instance_of::<PyDict>() {
            return self.container(obj, level, Kind::Dict);
        }
        if obj.is_exact_instance_of::<PySet>() || obj.is_exact_instance_of::<PyFrozenSet>() {
            return self.container(obj, level, Kind::Set);
        }
        self.ser
            .call_method1("_serialize_other", (obj, self.out, level))?;
        Ok(())
    }

    fn string(&self, s: &Bound<'py, PyString>) -> PyResult<()> {
        let text = s.to_cow();
        match text {
            Ok(t) if t.is_ascii() => {
                self.w(&ascii_repr(&t));
                Ok(())
            }
            // Non-ASCII text: Python's own repr, so "printable" follows the running
            // interpreter's Unicode tables (and lone surrogates are escaped).
            _ => {
                let r = s.repr()?;
                self.w(r.to_cow()?.as_bytes());
                Ok(())
            }
        }
    }

    fn complex(&self, re: f64, im: f64) -> PyResult<()> {
        if re.is_nan() || im.is_nan() {
            self.w(b"{'__class__':'complex','real':");
            self.scalar(&Value::Float(re))?;
            self.w(b",'imag':");
            self.scalar(&Value::Float(im))?;
            self.w(b"}");
            return Ok(());
        }
        self.w(b"(");
        self.scalar(&Value::Float(re))?;
        if im >= 0.0 && im.is_sign_positive() {
            self.w(b"+");
        }
        self.scalar(&Value::Float(im))?;
        self.w(b"j)");
        Ok(())
    }

    fn check_key(&self, key: &Bound<'py, PyAny>) -> PyResult<()> {
        if key.is_exact_instance_of::<PyString>()
            || key.is_exact_instance_of::<PyInt>()
            || key.is_exact_instance_of::<PyBool>()
            || key.is_exact_instance_of::<PyFloat>()
            || key.is_exact_instance_of::<PyTuple>()
            || key.is_exact_instance_of::<PyBytes>()
            || key.is_exact_instance_of::<PyComplex>()
        {
            return Ok(());
        }
        self.ser
            .call_method1("_check_hashable_type", (key.get_type(),))?;
        Ok(())
    }

    fn pad(&self, level: usize) {
        let mut o = self.out.borrow_mut();
        let n = o.buf.len() + 2 * level;
        o.buf.resize(n, b' ');
    }

    fn sorted_or_same(&self, items: Vec<Bound<'py, PyAny>>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let py = self.ser.py();
        let list = PyList::new(py, &items)?;
        match list.sort() {
            Ok(()) => Ok(list.iter().collect()),
            Err(e) if e.is_instance_of::<PyTypeError>(py) => Ok(items),
            Err(e) => Err(e),
        }
    }

    /// The builtin rules for tuple, list, dict and set (also used by the MRO fallback for
    /// subclasses and by `ser_builtins_list` on dict views).
    fn container(&self, obj: &Bound<'py, PyAny>, level: usize, kind: Kind) -> PyResult<()> {
        match kind {
            Kind::List => self.out.borrow_mut().enter(obj, "list")?,
            Kind::Dict => self.out.borrow_mut().enter(obj, "dict")?,
            _ => {}
        }
        if kind == Kind::Dict {
            let items: Vec<Bound<'py, PyAny>> = obj
                .call_method0("items")?
                .try_iter()?
                .collect::<PyResult<_>>()?;
            if self.indent && !items.is_empty() {
                let items = self.sorted_or_same(items)?;
                self.w(b"{\n");
                for (i, it) in items.iter().enumerate() {
                    let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = it.extract()?;
                    if i > 0 {
                        self.w(b",\n");
                    }
                    self.pad(level + 1);
                    self.check_key(&k)?;
                    self.value(&k, level + 1)?;
                    self.w(b": ");
                    self.value(&v, level + 1)?;
                }
                self.w(b"\n");
                self.pad(level);
                self.w(b"}");
            } else {
                self.w(b"{");
                for (i, it) in items.iter().enumerate() {
                    let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = it.extract()?;
                    if i > 0 {
                        self.w(b",");
                    }
                    self.check_key(&k)?;
                    self.value(&k, level + 1)?;
                    self.w(b":");
                    self.value(&v, level + 1)?;
                }
                self.w(b"}");
            }
            self.out.borrow_mut().leave(obj);
            return Ok(());
        }
        let items: Vec<Bound<'py, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
        let (open, close) = match kind {
            Kind::Tuple => (b"(", b")"),
            Kind::List => (b"[", b"]"),
            _ => (b"{", b"}"),
        };
        if kind == Kind::Set && items.is_empty() {
            // No empty-set literal: serpent writes an empty tuple.
            self.w(b"()");
            return Ok(());
        }
        if self.indent && !items.is_empty() {
            let items = if kind == Kind::Set {
                self.sorted_or_same(items)?
            } else {
                items
            };
            self.w(open);
            self.w(b"\n");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.w(b",\n");
                }
                self.pad(level + 1);
                if kind == Kind::Set {
                    self.check_key(it)?;
                }
                self.value(it, level + 1)?;
            }
            if kind == Kind::Tuple && items.len() == 1 {
                self.w(b",");
            }
            self.w(b"\n");
            self.pad(level);
            self.w(close);
        } else {
            self.w(open);
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.w(b",");
                }
                if kind == Kind::Set {
                    self.check_key(it)?;
                }
                self.value(it, level + 1)?;
            }
            if kind == Kind::Tuple && items.len() == 1 {
                self.w(b",");
            }
            self.w(close);
        }
        if kind == Kind::List {
            self.out.borrow_mut().leave(obj);
        }
        Ok(())
    }
}

/// Python's `repr()` of an ASCII str.
fn ascii_repr(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = Vec::with_capacity(b.len() + 2);
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c == quote => {
                out.push(b'\\');
                out.push(c);
            }
            c if c < 0x20 || c == 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 15) as usize],
                ]);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// serpent's `Serializer._serialize(obj, out, level)`.
#[pyfunction]
pub(crate) fn serpent_serialize(
    ser: &Bound<'_, PyAny>,
    obj: &Bound<'_, PyAny>,
    out: &Bound<'_, Output>,
    level: usize,
) -> PyResult<()> {
    Walker::new(ser, out)?.value(obj, level)
}

/// serpent's builtin container rules (`ser_builtins_tuple/list/dict/set`) for `obj`
/// (any iterable for list, tuple and set; a mapping for dict). `kind` is one of
/// "tuple", "list", "dict", "set".
#[pyfunction]
pub(crate) fn serpent_container(
    ser: &Bound<'_, PyAny>,
    obj: &Bound<'_, PyAny>,
    out: &Bound<'_, Output>,
    level: usize,
    kind: &str,
) -> PyResult<()> {
    let kind = match kind {
        "tuple" => Kind::Tuple,
        "list" => Kind::List,
        "dict" => Kind::Dict,
        "set" => Kind::Set,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown container kind {other}"
            )))
        }
    };
    Walker::new(ser, out)?.container(obj, level, kind)
}

/// serpent's float rule (`ser_builtins_float`) as text.
#[pyfunction]
pub(crate) fn serpent_float(v: f64) -> PyResult<String> {
    let bytes =
        serpent::to_vec(&Value::Float(v)).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes[serpent::HEADER.len()..]).into_owned())
}

/// `pyro_rs.serpent._dumps_full`, looked up once (on the first call that needs it).
static DUMPS_FULL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// serpent's `Serializer.maximum_level`: `min(sys.getrecursionlimit() // 5, 1000)`.
/// Read per call, as serpent does when it makes a `Serializer`, so a later
/// `sys.setrecursionlimit` counts.
fn maximum_level(_py: Python<'_>) -> usize {
    // SAFETY: `Py_GetRecursionLimit` (stable ABI) takes no arguments and reads the
    // interpreter's setting; the `Python` token shows the GIL is held. Calling
    // `sys.getrecursionlimit` instead costs a tenth of a small `dumps` (a call and an int).
    #[allow(unsafe_code)]
    let limit = unsafe { pyo3::ffi::Py_GetRecursionLimit() };
    (usize::try_from(limit).unwrap_or(0) / 5).min(1000)
}

/// serpent 1.43's `dumps(obj, indent=False, module_in_classname=False, bytes_repr=False)`:
/// `pyro_rs.serpent.dumps` is this function, so a call reaches Rust with no Python frame.
///
/// In compact mode a tree made only of exact builtin types (str, int, bool, None, float,
/// complex, bytes, tuple, list, dict, set and frozenset, with dict keys and set elements
/// of serpent's primitive hashable types) is written here in one pass. serpent dispatches
/// these exact types before it looks at registered classes, so the output is the one the
/// full `Serializer` writes. Anything else (indent mode, another type, a subclass, an int
/// too long for an i64, nesting past `maximum_level`, which is also where a cycle ends up)
/// goes to `pyro_rs.serpent._dumps_full`, the full `Serializer`, which then gives serpent's
/// own result or error. The fast path exists because building a `Serializer`, copying the
/// class registry and calling back per container costs more than writing a small message.
#[pyfunction]
#[pyo3(
    signature = (obj, indent=None, module_in_classname=None, bytes_repr=None),
    text_signature = "(obj, indent=False, module_in_classname=False, bytes_repr=False)"
)]
pub(crate) fn serpent_dumps_builtin<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    indent: Option<&Bound<'py, PyAny>>,
    module_in_classname: Option<&Bound<'py, PyAny>>,
    bytes_repr: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let truthy = |v: Option<&Bound<'py, PyAny>>| v.map_or(Ok(false), |v| v.is_truthy());
    if !truthy(indent)? {
        let mut w = FastWriter::new(
            py,
            take_out_buf(),
            truthy(bytes_repr)?,
            maximum_level(py),
            true,
        );
        w.buf.extend_from_slice(serpent::HEADER);
        let done = w.value(obj, 0);
        let out = match done {
            Ok(true) => Some(PyBytes::new(py, &w.buf)),
            _ => None,
        };
        keep_out_buf(std::mem::take(&mut w.buf));
        if let Some(out) = out {
            return Ok(out.into_any());
        }
        done?;
    }
    let full = DUMPS_FULL.import(py, "pyro_rs.serpent", "_dumps_full")?;
    let arg = |v: Option<&Bound<'py, PyAny>>| match v {
        Some(v) => v.clone(),
        None => PyBool::new(py, false).to_owned().into_any(),
    };
    full.call1((obj, arg(indent), arg(module_in_classname), arg(bytes_repr)))
}

/// The largest output buffer a thread keeps for its next `dumps`.
const KEEP_OUT_BUF: usize = 4 << 20;

thread_local! {
    /// The output buffer kept between `dumps` calls on this thread: a fresh buffer for a
    /// large message costs page faults that take longer than writing it.
    static OUT_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// This thread's kept output buffer (a new one if none is kept or it is in use).
pub(crate) fn take_out_buf() -> Vec<u8> {
    let kept = take_kept(&OUT_BUF);
    if kept.capacity() == 0 {
        Vec::with_capacity(256)
    } else {
        kept
    }
}

/// Keep the output buffer for the next call, unless it has grown past [`KEEP_OUT_BUF`].
pub(crate) fn keep_out_buf(mut buf: Vec<u8>) {
    if buf.capacity() > KEEP_OUT_BUF {
        return;
    }
    buf.clear();
    put_back(&OUT_BUF, buf);
}

/// Longest repr of a dict key the [`KeyCache`] keeps (quotes included).
const KEY_REPR_MAX: usize = 32;
/// Slots of the [`KeyCache`] (a power of two).
const KEY_CACHE_SLOTS: usize = 256;

/// The reprs of str dict keys this thread wrote recently, by object (direct-mapped on
/// the address). Messages repeat their keys, and the keys are mostly the same objects
/// (literals and attribute names are interned; the parser's [`StrCache`] hands out the
/// same object for the same short text), so a key costs an address compare and a
/// fixed-size copy instead of reading its UTF-8 and testing every byte. The slot holds a
/// reference to its str: while cached, an address cannot be reused by another object, and
/// a str with more than one reference is never changed in place. At most
/// [`KEY_CACHE_SLOTS`] short strings are kept alive per thread.
#[derive(Default)]
struct KeyCache {
    slots: Vec<Option<KeyRepr>>,
}

/// One [`KeyCache`] slot: the str and its repr (plain ASCII text only).
struct KeyRepr {
    obj: Py<PyString>,
    len: u8,
    repr: [u8; KEY_REPR_MAX],
}

thread_local! {
    static KEY_CACHE: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

impl KeyCache {
    fn slot(obj: &Bound<'_, PyString>) -> usize {
        // Objects are 16-byte aligned: the low bits say nothing.
        let p = obj.as_ptr() as usize;
        ((p >> 4) ^ (p >> 12)) % KEY_CACHE_SLOTS
    }
}

/// The writer of [`serpent_dumps_builtin`]: `Ok(false)` means "not a builtin-only tree".
struct FastWriter {
    buf: Vec<u8>,
    bytes_repr: bool,
    max_level: usize,
    /// Give up ("not written") once the output would pass this many bytes.
    limit: usize,
    /// Text without UTF-8 (lone surrogates) is written with Python's own `repr`; when
    /// false it is "not written", and the caller's value path reports it.
    python_repr: bool,
    /// This thread's [`KeyCache`], taken for the writer's lifetime (an empty one when a
    /// writer on this thread already has it).
    keys: KeyCache,
    /// The collector was on when the writer started (and is off until it ends).
    gc_was_enabled: bool,
}

impl Drop for FastWriter {
    fn drop(&mut self) {
        if self.gc_was_enabled {
            // SAFETY: as in `FastWriter::new`: no arguments, the GIL is still held (a
            // writer never leaves the thread that made it, and never releases the GIL).
            #[allow(unsafe_code)]
            unsafe {
                pyo3::ffi::PyGC_Enable();
            }
        }
        let keys = std::mem::take(&mut self.keys);
        if !keys.slots.is_empty() {
            put_back(&KEY_CACHE, keys);
        }
    }
}

impl FastWriter {
    /// A writer; the garbage collector is paused until it is dropped.
    ///
    /// The writer reads dicts, lists and tuples through borrowed references (no reference
    /// counting per item). That is sound only while nothing can change them, and the
    /// writer runs no Python code: it only tests exact builtin types and calls C functions
    /// of the interpreter on them. What could still run Python code is a collection,
    /// started by an allocation (a set iterator, an error object) and running finalizers
    /// or `gc.callbacks`, which might empty a dict being walked. So collections wait until
    /// the writer is done, as while any C code holds the GIL without allocating.
    fn new(
        _py: Python<'_>,
        buf: Vec<u8>,
        bytes_repr: bool,
        max_level: usize,
        python_repr: bool,
    ) -> Self {
        // SAFETY: `PyGC_Disable` (stable ABI since 3.10) takes no arguments and sets the
        // interpreter's flag, returning the previous one; the `Python` token shows the GIL
        // is held. `Drop` turns it back on only if it was on.
        #[allow(unsafe_code)]
        let gc_was_enabled = unsafe { pyo3::ffi::PyGC_Disable() } != 0;
        let keys = take_kept(&KEY_CACHE);
        FastWriter {
            buf,
            bytes_repr,
            max_level,
            limit: usize::MAX,
            python_repr,
            keys,
            gc_was_enabled,
        }
    }

    /// A str dict key: from the [`KeyCache`] when this object's repr is there, else
    /// written by [`FastWriter::string`] and, if plain ASCII and short, kept.
    fn key_string(&mut self, s: &Bound<'_, PyString>) -> PyResult<bool> {
        if self.keys.slots.is_empty() {
            self.keys.slots.resize_with(KEY_CACHE_SLOTS, || None);
        }
        let slot = KeyCache::slot(s);
        let start = self.buf.len();
        if let Some(k) = &self.keys.slots[slot] {
            if k.obj.as_ptr() == s.as_ptr() {
                let end = start + usize::from(k.len);
                if end > self.limit {
                    return Ok(false);
                }
                // A fixed-size copy cut to length.
                self.buf.extend_from_slice(&k.repr);
                self.buf.truncate(end);
                return Ok(true);
            }
        }
        let Ok(t) = s.to_str() else {
            return self.string(s);
        };
        if !t.is_ascii() {
            return self.string(s);
        }
        if !self.string(s)? {
            return Ok(false);
        }
        let written = &self.buf[start..];
        if written.len() <= KEY_REPR_MAX {
            let mut repr = [0u8; KEY_REPR_MAX];
            repr[..written.len()].copy_from_slice(written);
            self.keys.slots[slot] = Some(KeyRepr {
                obj: s.clone().unbind(),
                // Fits: at most KEY_REPR_MAX.
                len: written.len() as u8,
                repr,
            });
        }
        Ok(true)
    }
    fn call(
        &mut self,
        object: &str,
        method: &str,
        args: &Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        self.buf.extend_from_slice(serpent::HEADER);
        self.buf.push(b'(');
        serpent::text::str_repr(&mut self.buf, object);
        self.buf.push(b',');
        serpent::text::str_repr(&mut self.buf, method);
        self.buf.push(b',');
        let written = if let Ok(t) = args.cast_exact::<PyTuple>() {
            self.tuple(t.iter_borrowed(), t.len(), 1)?
        } else if let Ok(l) = args.cast_exact::<PyList>() {
            let t = l.to_tuple();
            self.tuple(t.iter_borrowed(), t.len(), 1)?
        } else {
            false
        };
        if !written {
            return Ok(false);
        }
        self.buf.push(b',');
        match kwargs {
            Some(d) => {
                if !self.value(d.as_any(), 1)? {
                    return Ok(false);
                }
            }
            None => self.buf.extend_from_slice(b"None"),
        }
        self.buf.push(b')');
        Ok(true)
    }

    /// `ser_builtins_tuple`: `(a,b)`, `(a,)` for one item.
    fn tuple<'a, 'py>(
        &mut self,
        items: impl Iterator<Item = Borrowed<'a, 'py, PyAny>>,
        len: usize,
        level: usize,
    ) -> PyResult<bool> {
        self.buf.push(b'(');
        for (i, it) in items.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            if !self.value(&it, level + 1)? {
                return Ok(false);
            }
        }
        if len == 1 {
            self.buf.push(b',');
        }
        self.buf.push(b')');
        Ok(true)
    }

    fn value(&mut self, obj: &Bound<'_, PyAny>, level: usize) -> PyResult<bool> {
        if level > self.max_level || self.buf.len() > self.limit {
            return Ok(false);
        }
        // Most frequent first; the exact-type tests are exclusive, so order is only speed.
        if obj.is_exact_instance_of::<PyInt>() {
            return match obj.extract::<i64>() {
                Ok(i) => {
                    serpent::text::int(&mut self.buf, i);
                    Ok(true)
                }
                // Big ints (and the digit limit) go through the full path's repr().
                Err(_) => Ok(false),
            };
        }
        if let Ok(s) = obj.cast_exact::<PyString>() {
            return self.string(s);
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            serpent::text::float(&mut self.buf, f.value());
            return Ok(true);
        }
        if let Ok(d) = obj.cast_exact::<PyDict>() {
            self.buf.push(b'{');
            let len = d.len();
            let (mut pos, mut first) = (0, true);
            while let Some((k, v)) = dict_next(d, &mut pos) {
                if !first {
                    self.buf.push(b',');
                }
                first = false;
                let key_written = if let Ok(ks) = k.cast_exact::<PyString>() {
                    // Most keys: the str test `value` would reach after the int test.
                    level < self.max_level && self.key_string(&ks)?
                } else {
                    is_primitive_key(&k) && self.value(&k, level + 1)?
                };
                if !key_written {
                    return Ok(false);
                }
                self.buf.push(b':');
                if !self.value(&v, level + 1)? {
                    return Ok(false);
                }
            }
            // A guard: nothing can change the dict while it is written (see
            // `FastWriter::new`); if it did, serpent's own walk would decide.
            if d.len() != len {
                return Ok(false);
            }
            self.buf.push(b'}');
            return Ok(true);
        }
        if let Ok(l) = obj.cast_exact::<PyList>() {
            self.buf.push(b'[');
            // Lists of ints are common and long: their items are written here, without
            // the call and type tests of `value` (the level check is the one it makes).
            let ints_here = level < self.max_level;
            let len = l.len();
            for i in 0..len {
                if i > 0 {
                    self.buf.push(b',');
                }
                let Some(it) = list_item(l, i) else {
                    // A guard, as for dicts: the list shrank while it was written.
                    return Ok(false);
                };
                let written = if ints_here && it.is_exact_instance_of::<PyInt>() {
                    match it.extract::<i64>() {
                        Ok(v) => serpent::text::int(&mut self.buf, v),
                        Err(_) => return Ok(false),
                    }
                    true
                } else {
                    self.value(&it, level + 1)?
                };
                if !written {
                    return Ok(false);
                }
            }
            if l.len() != len {
                return Ok(false);
            }
            self.buf.push(b']');
            return Ok(true);
        }
        if let Ok(t) = obj.cast_exact::<PyTuple>() {
            // A tuple's items cannot change while the tuple is alive: borrowed, no counts.
            return self.tuple(t.iter_borrowed(), t.len(), level);
        }
        if obj.is_exact_instance_of::<PyBool>() {
            let t = obj.is_truthy()?;
            self.buf
                .extend_from_slice(if t { b"True" } else { b"False" });
            return Ok(true);
        }
        if obj.is_none() {
            self.buf.extend_from_slice(b"None");
            return Ok(true);
        }
        if let Ok(b) = obj.cast_exact::<PyBytes>() {
            // base64 makes 4 bytes of 3: do not encode what will be thrown away.
            if self.buf.len().saturating_add(b.as_bytes().len() / 3 * 4) > self.limit {
                return Ok(false);
            }
            serpent::text::bytes(&mut self.buf, b.as_bytes(), self.bytes_repr);
            return Ok(true);
        }
        if let Ok(c) = obj.cast_exact::<PyComplex>() {
            serpent::text::complex(&mut self.buf, c.real(), c.imag());
            return Ok(true);
        }
        if let Ok(s) = obj.cast_exact::<PySet>() {
            return self.set(s.iter(), s.len(), level);
        }
        if let Ok(s) = obj.cast_exact::<PyFrozenSet>() {
            return self.set(s.iter(), s.len(), level);
        }
        Ok(false)
    }

    /// `ser_builtins_set`: `{a,b}`, and `()` for the empty set.
    fn set<'py>(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        level: usize,
    ) -> PyResult<bool> {
        if len == 0 {
            self.buf.extend_from_slice(b"()");
            return Ok(true);
        }
        self.buf.push(b'{');
        for (i, it) in items.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            if !is_primitive_key(&it) || !self.value(&it, level + 1)? {
                return Ok(false);
            }
        }
        self.buf.push(b'}');
        Ok(true)
    }

    /// ASCII text is written here from its UTF-8 (borrowed from the str object, no copy)
    /// with the codec's `repr` rules, the same bytes as Python's `repr`. Other text takes
    /// Python's own `repr`, as the full walker does, so "printable" follows the running
    /// interpreter's Unicode tables (and lone surrogates, which have no UTF-8, are escaped).
    fn string(&mut self, s: &Bound<'_, PyString>) -> PyResult<bool> {
        match s.to_str() {
            Ok(t) => {
                // The UTF-8 length bounds what the repr adds (no generic len() call).
                if self.buf.len().saturating_add(t.len()) > self.limit {
                    return Ok(false);
                }
                if serpent::text::plain_str_repr(&mut self.buf, t) {
                    return Ok(true);
                }
                if t.is_ascii() {
                    serpent::text::str_repr(&mut self.buf, t);
                    return Ok(true);
                }
            }
            Err(_) if !self.python_repr => return Ok(false),
            Err(_) => {}
        }
        let r = s.repr()?;
        self.buf.extend_from_slice(r.to_str()?.as_bytes());
        Ok(true)
    }
}

/// The next key and value of `d` from position `pos` (`PyDict_Next`), borrowed: for a
/// [`FastWriter`], under the terms given at `FastWriter::new`.
fn dict_next<'a, 'py>(
    d: &'a Bound<'py, PyDict>,
    pos: &mut pyo3::ffi::Py_ssize_t,
) -> Option<(Borrowed<'a, 'py, PyAny>, Borrowed<'a, 'py, PyAny>)> {
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: `d` is a live dict and the GIL is held (the `Bound`); `pos`, `key` and
    // `value` are the out-parameters `PyDict_Next` documents. On true it stores borrowed,
    // non-null references to an item of `d`, which live as long as `d` holds them: the
    // caller keeps `d` unchanged (`FastWriter::new`).
    #[allow(unsafe_code)]
    unsafe {
        if pyo3::ffi::PyDict_Next(d.as_ptr(), pos, &mut key, &mut value) == 0 {
            return None;
        }
        Some((
            Borrowed::from_ptr(d.py(), key),
            Borrowed::from_ptr(d.py(), value),
        ))
    }
}

/// Item `i` of `l` (`PyList_GetItem`), borrowed; `None` past the end. For a
/// [`FastWriter`], under the terms given at `FastWriter::new`.
fn list_item<'a, 'py>(l: &'a Bound<'py, PyList>, i: usize) -> Option<Borrowed<'a, 'py, PyAny>> {
    let index = pyo3::ffi::Py_ssize_t::try_from(i).ok()?;
    // SAFETY: `l` is a live list and the GIL is held. `PyList_GetItem` returns a
    // borrowed reference, or null with IndexError set past the end (cleared here).
    #[allow(unsafe_code)]
    unsafe {
        let p = pyo3::ffi::PyList_GetItem(l.as_ptr(), index);
        if p.is_null() {
            drop(PyErr::take(l.py()));
            return None;
        }
        Some(Borrowed::from_ptr(l.py(), p))
    }
}

/// serpent's primitive hashable key types, exactly (subclasses take the full path).
fn is_primitive_key(key: &Bound<'_, PyAny>) -> bool {
    key.is_exact_instance_of::<PyString>()
        || key.is_exact_instance_of::<PyInt>()
        || key.is_exact_instance_of::<PyBool>()
        || key.is_exact_instance_of::<PyFloat>()
        || key.is_exact_instance_of::<PyTuple>()
        || key.is_exact_instance_of::<PyBytes>()
        || key.is_exact_instance_of::<PyComplex>()
}
