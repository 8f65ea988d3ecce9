//! Python's `repr()` of a [`Value`], for output that must look like a Python tool's
//! (`pyro-nsc` prints metadata lists the way Pyro4's nsc does).
//!
//! Unlike serpent's compact layout this has Python's spacing (`[1, 2]`, `{'a': 1}`),
//! `set()` for the empty set, and `inf`/`nan` for special floats.

use crate::serpent::encode::{write_bytes_repr, write_float_repr, write_str_repr};
use crate::Value;

/// `repr(value)` as CPython prints it.
pub fn repr(value: &Value) -> String {
    let mut out = Vec::new();
    write_repr(&mut out, value);
    // Every writer emits UTF-8 (str repr keeps printable text as is).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_repr(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::None => out.extend_from_slice(b"None"),
        Value::Bool(true) => out.extend_from_slice(b"True"),
        Value::Bool(false) => out.extend_from_slice(b"False"),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::BigInt(b) => out.extend_from_slice(b.to_string().as_bytes()),
        Value::Float(f) => write_float(out, *f),
        Value::Complex(re, im) => write_complex(out, *re, *im),
        Value::Str(s) => write_str_repr(out, s),
        Value::Bytes(b) => write_bytes_repr(out, b),
        Value::Tuple(items) => {
            out.push(b'(');
            write_items(out, items);
            if items.len() == 1 {
                out.push(b',');
            }
            out.push(b')');
        }
        Value::List(items) => {
            out.push(b'[');
            write_items(out, items);
            out.push(b']');
        }
        Value::Set(items) if items.is_empty() => out.extend_from_slice(b"set()"),
        Value::Set(items) => {
            out.push(b'{');
            write_items(out, items);
            out.push(b'}');
        }
        Value::Dict(d) => {
            out.push(b'{');
            for (i, (k, v)) in d.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_repr(out, k);
                out.extend_from_slice(b": ");
                write_repr(out, v);
            }
            out.push(b'}');
        }
    }
}

fn write_items(out: &mut Vec<u8>, items: &[Value]) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_repr(out, it);
    }
}

fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"nan");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"inf" } else { b"-inf" });
    } else {
        write_float_repr(out, f);
    }
}

/// A complex part as Python's complex repr writes it: float repr without a trailing
/// `.0` on integral values (`(1+2j)`, `1.5j`).
fn write_complex_part(out: &mut Vec<u8>, f: f64) {
    let start = out.len();
    write_float(out, f);
    if out[start..].ends_with(b".0") {
        out.truncate(out.len() - 2);
    }
}

fn write_complex(out: &mut Vec<u8>, re: f64, im: f64) {
    if re == 0.0 && re.is_sign_positive() {
        write_complex_part(out, im);
        out.push(b'j');
        return;
    }
    out.push(b'(');
    write_complex_part(out, re);
    if !(im.is_sign_negative() || im.is_nan() && im.is_sign_negative()) {
        out.push(b'+');
    }
    write_complex_part(out, im);
    out.extend_from_slice(b"j)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dict;

    #[test]
    fn python_spacing_and_special_forms() {
        let list = Value::List(vec![Value::str("a"), Value::str("it's"), Value::Int(3)]);
        assert_eq!(repr(&list), r#"['a', "it's", 3]"#);
        assert_eq!(repr(&Value::Tuple(vec![Value::Int(1)])), "(1,)");
        assert_eq!(repr(&Value::Set(vec![])), "set()");
        let mut d = Dict::new();
        d.set("k", Value::Float(1.0));
        assert_eq!(repr(&Value::Dict(d)), "{'k': 1.0}");
        assert_eq!(repr(&Value::Float(f64::INFINITY)), "inf");
        assert_eq!(repr(&Value::Complex(1.0, 2.0)), "(1+2j)");
        assert_eq!(repr(&Value::Complex(0.0, -1.5)), "-1.5j");
        assert_eq!(repr(&Value::Complex(1.0, -0.0)), "(1-0j)");
        assert_eq!(repr(&Value::Bytes(b"a'".to_vec())), r#"b"a'""#);
    }
}
