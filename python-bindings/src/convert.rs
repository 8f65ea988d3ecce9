//! Conversion between the shared value model ([`Value`]) and Python objects.
//!
//! Python to [`Value`]: the exact builtin types are converted here; any other object is
//! handed to a serializer-specific Python hook that returns a replacement made of
//! builtins (Pyro4's `class_to_dict`, json's `default`, serpent's class rules), which is
//! then converted in turn. [`Value`] to Python: plain builtins, except that a dict with a
//! `__class__` key goes to a Python `dict_to_class` hook, as Pyro4's `recreate_classes`
//! does on every received payload.

use num_bigint::BigInt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList,
    PyMemoryView, PySet, PyString, PyTuple,
};
use pyro_codec::{Dict, Value};

/// serpent's default `maximum_level`: deeper values are refused (and cycles end here).
const MAX_LEVEL: usize = 200;

/// How objects that are not exact builtins are converted.
pub(crate) struct ToValue<'a, 'py> {
    /// Called with an unknown object; returns a replacement object.
    pub(crate) hook: Option<&'a Bound<'py, PyAny>>,
    /// Treat instances of builtin subclasses (namedtuple, defaultdict, IntEnum ...) as
    /// their builtin base before asking the hook (json and marshal do; serpent's own
    /// dispatch is in the hook).
    pub(crate) subclass_as_base: bool,
}

fn too_deep() -> PyErr {
    PyValueError::new_err("Object graph nesting too deep")
}

impl<'py> ToValue<'_, 'py> {
    /// Convert one object.
    pub(crate) fn convert(&self, obj: &Bound<'py, PyAny>, level: usize) -> PyResult<Value> {
        if level > MAX_LEVEL {
            return Err(too_deep());
        }
        if obj.is_none() {
            return Ok(Value::None);
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if obj.is_exact_instance_of::<PyInt>() {
            return int_value(obj);
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            return Ok(Value::Float(f.value()));
        }
        if let Ok(s) = obj.cast_exact::<PyString>() {
            return Ok(Value::Str(s.to_cow()?.into_owned()));
        }
        if let Ok(t) = obj.cast_exact::<PyTuple>() {
            return Ok(Value::Tuple(self.items(t.iter(), level)?));
        }
        if let Ok(l) = obj.cast_exact::<PyList>() {
            return Ok(Value::List(self.items(l.iter(), level)?));
        }
        if let Ok(d) = obj.cast_exact::<PyDict>() {
            return self.dict(d, level);
        }
        if let Ok(b) = obj.cast_exact::<PyBytes>() {
            return Ok(Value::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(s) = obj.cast_exact::<PySet>() {
            return Ok(Value::Set(self.items(s.iter(), level)?));
        }
        if let Ok(s) = obj.cast_exact::<PyFrozenSet>() {
            return Ok(Value::Set(self.items(s.iter(), level)?));
        }
        if let Ok(c) = obj.cast_exact::<PyComplex>() {
            return Ok(Value::Complex(c.real(), c.imag()));
        }
        if obj.is_exact_instance_of::<PyByteArray>() || obj.is_exact_instance_of::<PyMemoryView>() {
            let b: Vec<u8> = obj
                .call_method0("__bytes__")
                .or_else(|_| obj.py().get_type::<PyBytes>().call1((obj,)))?
                .extract()?;
            return Ok(Value::Bytes(b));
        }
        if self.subclass_as_base {
            if let Some(v) = self.subclass(obj, level)? {
                return Ok(v);
            }
        }
        match self.hook {
            Some(hook) => {
                let replaced = hook.call1((obj,))?;
                if replaced.is(obj) {
                    return Err(PyTypeError::new_err(format!(
                        "don't know how to serialize {}",
                        obj.get_type().name()?
                    )));
                }
                self.convert(&replaced, level)
            }
            None => Err(PyTypeError::new_err(format!(
                "don't know how to serialize {}",
                obj.get_type().name()?
            ))),
        }
    }

    fn subclass(&self, obj: &Bound<'py, PyAny>, level: usize) -> PyResult<Option<Value>> {
        Ok(Some(if obj.is_instance_of::<PyBool>() {
            Value::Bool(obj.is_truthy()?)
        } else if obj.is_instance_of::<PyInt>() {
            int_value(obj)?
        } else if let Ok(f) = obj.cast::<PyFloat>() {
            Value::Float(f.value())
        } else if let Ok(s) = obj.cast::<PyString>() {
            Value::Str(s.to_cow()?.into_owned())
        } else if let Ok(t) = obj.cast::<PyTuple>() {
            Value::Tuple(self.items(t.iter(), level)?)
        } else if let Ok(l) = obj.cast::<PyList>() {
            Value::List(self.items(l.iter(), level)?)
        } else if let Ok(d) = obj.cast::<PyDict>() {
            self.dict(d, level)?
        } else {
            return Ok(None);
        }))
    }

    fn items(
        &self,
        it: impl Iterator<Item = Bound<'py, PyAny>>,
        level: usize,
    ) -> PyResult<Vec<Value>> {
        it.map(|x| self.convert(&x, level + 1)).collect()
    }

    fn dict(&self, d: &Bound<'py, PyDict>, level: usize) -> PyResult<Value> {
        let mut pairs = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            pairs.push((self.convert(&k, level + 1)?, self.convert(&v, level + 1)?));
        }
        // Python already made the keys unique; keep its order.
        Ok(Value::Dict(Dict::from_unique_pairs(pairs)))
    }
}

fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::Int(i));
    }
    let big: BigInt = obj.extract()?;
    Ok(Value::from_bigint(big))
}

/// Convert a value to Python. Dicts with a `__class__` key go to `dict_to_class` when a
/// hook is given (their contents are converted without it, as Pyro4's
/// `recreate_classes` does not recurse into a class dict).
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    v: &Value,
    dict_to_class: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(b) => b.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Complex(re, im) => PyComplex::from_doubles(py, *re, *im).into_any(),
        Value::Str(s) => crate::serpent::new_str(py, s)?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Tuple(items) => {
            let items = items
                .iter()
                .map(|x| to_py(py, x, dict_to_class))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        Value::List(items) => {
            let items = items
                .iter()
                .map(|x| to_py(py, x, dict_to_class))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Set(items) => {
            let s = PySet::empty(py)?;
            for x in items {
                s.add(to_py(py, x, dict_to_class)?)?;
            }
            s.into_any()
        }
        Value::Dict(d) => {
            let is_class = dict_to_class.is_some() && d.get_str("__class__").is_some();
            let inner = if is_class { None } else { dict_to_class };
            let out = PyDict::new(py);
            for (k, x) in d.iter() {
                out.set_item(to_py(py, k, inner)?, to_py(py, x, inner)?)?;
            }
            match (is_class, dict_to_class) {
                (true, Some(hook)) => hook.call1((out,))?,
                _ => out.into_any(),
            }
        }
    })
}
