//! Parser and encoder behaviour beyond the golden vectors: error kinds and offsets, the
//! documented differences from `ast.literal_eval`, encoder refusals, and the builder API.

use num_bigint::BigInt;
use pyro_codec::serpent::{self, parse_with, Builder, EncodeOptions};
use pyro_codec::{DecodeLimits, Dict, Error, Result, Value};
use std::vec::Drain;

fn parse(s: &str) -> Result<Value> {
    serpent::from_slice(s.as_bytes())
}

fn offset(r: Result<Value>) -> usize {
    match r {
        Err(Error::Syntax { offset, .. }) => offset,
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn grouping_parens_versus_tuples() {
    assert_eq!(parse("(1)").unwrap(), Value::Int(1));
    assert_eq!(parse("(1,)").unwrap(), Value::Tuple(vec![Value::Int(1)]));
    assert_eq!(
        parse("((1,),)").unwrap(),
        Value::Tuple(vec![Value::Tuple(vec![Value::Int(1)])])
    );
    assert_eq!(parse("()").unwrap(), Value::Tuple(vec![]));
    assert_eq!(parse("(-1+2j)").unwrap(), Value::Complex(-1.0, 2.0));
    assert_eq!(parse("-(1)").unwrap(), Value::Int(-1));
}

#[test]
fn numbers() {
    assert_eq!(parse("-9223372036854775808").unwrap(), Value::Int(i64::MIN));
    assert_eq!(
        parse("9223372036854775808").unwrap(),
        Value::BigInt(BigInt::from(i64::MAX) + 1)
    );
    assert_eq!(parse("0x_ff").unwrap(), Value::Int(255));
    assert_eq!(parse("0o1_7").unwrap(), Value::Int(15));
    assert_eq!(parse("0B101").unwrap(), Value::Int(5));
    assert_eq!(parse("1e30000").unwrap(), Value::Float(f64::INFINITY));
    assert_eq!(parse("-1e30000").unwrap(), Value::Float(f64::NEG_INFINITY));
    assert_eq!(
        parse("(1e30000+4.0j)").unwrap(),
        Value::Complex(f64::INFINITY, 4.0)
    );
    assert_eq!(parse("-0.0").unwrap(), Value::Float(-0.0));
    assert_eq!(parse("1_0.5").unwrap(), Value::Float(10.5));
    assert_eq!(parse("1J").unwrap(), Value::Complex(0.0, 1.0));
}

#[test]
fn strings() {
    assert_eq!(
        parse(r"'\x41\u00e9\U0001F600\101\0'").unwrap(),
        Value::str("Aé😀A\0")
    );
    assert_eq!(parse("'a' \"b\" '''c'''").unwrap(), Value::str("abc"));
    assert_eq!(parse(r"r'\n' '\n'").unwrap(), Value::str("\\n\n"));
    assert_eq!(
        parse(r"b'\x00\xff' rb'\x'").unwrap(),
        Value::Bytes(b"\x00\xff\\x".to_vec())
    );
    assert_eq!(parse("'a\\\nb'").unwrap(), Value::str("ab"));
    assert_eq!(parse(r"'\q'").unwrap(), Value::str("\\q"));
    assert!(parse("'a' b'b'").is_err());
}

#[test]
fn documented_differences_are_errors() {
    // Python accepts these; the value model cannot hold them.
    assert_eq!(offset(parse(r"['\ud800']")), 2);
    assert_eq!(offset(parse(r"'\N{EURO SIGN}'")), 1);
    assert_eq!(offset(parse("[...]")), 1);
}

#[test]
fn errors_carry_offsets() {
    assert_eq!(offset(parse("[1,,2]")), 3);
    assert_eq!(offset(parse("[1] x")), 4);
    assert_eq!(offset(parse("{1:2,3}")), 6);
    assert_eq!(offset(parse("[1, 01]")), 4);
    assert_eq!(offset(parse("[1, --1]")), 4);
    assert_eq!(offset(parse("foo")), 0);
    assert_eq!(offset(serpent::from_slice(b"[1, 2\x00]")), 5);
    assert_eq!(offset(serpent::from_slice(b"['ab\xff']")), 4);
    assert!(parse("[1, 2").is_err());
    assert_eq!(parse(""), Err(Error::Eof { codec: "serpent" }));
    assert_eq!(parse("{[1]:2}"), Err(Error::Unhashable("list")));
    assert_eq!(parse("{{1}}"), Err(Error::Unhashable("set")));
}

#[test]
fn python_equality_dedups() {
    let d = parse("{1:'a', True:'b', 1.0:'c', 2:'d'}").unwrap();
    let Value::Dict(d) = d else { panic!() };
    assert_eq!(d.len(), 2);
    assert_eq!(d.entries()[0], (Value::Int(1), Value::str("c")));
    assert_eq!(
        parse("{1, 1.0, True}").unwrap(),
        Value::Set(vec![Value::Int(1)])
    );
    assert_eq!(parse("set()").unwrap(), Value::Set(vec![]));
}

#[test]
fn header_and_comments() {
    let v = parse("# serpent utf-8 python3.2\n[ 1, 2,\n   # c\n   3, 4]    # more\n# end").unwrap();
    assert_eq!(v, Value::List((1..=4).map(Value::Int).collect()));
    assert!(parse("# serpent utf-8 python3.2\n  [1]").is_err()); // unexpected indent
}

fn nested_list(depth: usize) -> Value {
    let mut v = Value::Int(1);
    for _ in 0..depth {
        v = Value::List(vec![v]);
    }
    v
}

#[test]
fn encoder_refuses_like_serpent() {
    // serpent 1.43 maximum_level 200: 200 nested lists around a scalar are fine, 201 not.
    assert!(serpent::to_vec(&nested_list(200)).is_ok());
    let err = serpent::to_vec(&nested_list(201)).unwrap_err();
    assert!(err.to_string().contains("too deep"), "{err}");
    let none_key = Dict::from_pairs(vec![(Value::None, Value::Int(1))]).unwrap();
    assert!(matches!(
        serpent::to_vec(&Value::Dict(none_key)),
        Err(Error::Unencodable(_))
    ));
    let big = Value::from_bigint(BigInt::from(10).pow(4300));
    assert!(matches!(serpent::to_vec(&big), Err(Error::Unencodable(_))));
    let ok = Value::from_bigint(BigInt::from(10).pow(4300) - 1);
    assert_eq!(
        serpent::to_vec(&ok).unwrap().len(),
        serpent::HEADER.len() + 4300
    );
}

#[test]
fn encode_into_appends_and_restores_on_error() {
    let mut buf = b"prefix".to_vec();
    serpent::encode_into(&Value::Int(5), &EncodeOptions::default(), &mut buf).unwrap();
    assert_eq!(buf, b"prefix# serpent utf-8 python3.2\n5");
    let mut buf = b"prefix".to_vec();
    assert!(serpent::encode_into(&nested_list(300), &EncodeOptions::default(), &mut buf).is_err());
    assert_eq!(buf, b"prefix");
}

/// A builder that renders what it sees, to show the walker drives any builder.
struct Render;

impl Builder for Render {
    type Out = String;
    fn none(&mut self) -> Result<String> {
        Ok("N".into())
    }
    fn bool(&mut self, v: bool) -> Result<String> {
        Ok(format!("{v}"))
    }
    fn int(&mut self, v: i64) -> Result<String> {
        Ok(format!("i{v}"))
    }
    fn bigint(&mut self, v: BigInt) -> Result<String> {
        Ok(format!("I{v}"))
    }
    fn float(&mut self, v: f64) -> Result<String> {
        Ok(format!("f{v}"))
    }
    fn complex(&mut self, re: f64, im: f64) -> Result<String> {
        Ok(format!("c{re},{im}"))
    }
    fn str(&mut self, v: &str) -> Result<String> {
        Ok(format!("s{v}"))
    }
    fn bytes(&mut self, v: &[u8]) -> Result<String> {
        Ok(format!("b{v:?}"))
    }
    fn tuple(&mut self, items: Drain<'_, String>) -> Result<String> {
        Ok(format!("T({})", items.collect::<Vec<_>>().join(" ")))
    }
    fn list(&mut self, items: Drain<'_, String>) -> Result<String> {
        Ok(format!("L({})", items.collect::<Vec<_>>().join(" ")))
    }
    fn set(&mut self, items: Drain<'_, String>) -> Result<String> {
        Ok(format!("S({})", items.collect::<Vec<_>>().join(" ")))
    }
    fn dict(&mut self, items: Drain<'_, String>) -> Result<String> {
        Ok(format!("D({})", items.collect::<Vec<_>>().join(" ")))
    }
}

#[test]
fn custom_builder() {
    let out = parse_with(
        b"[None, (1,), {'a': -2.5}, {1, 1}, 99999999999999999999, b'x', 1-2j, set()]",
        &DecodeLimits::default(),
        &mut Render,
    )
    .unwrap();
    assert_eq!(
        out,
        "L(N T(i1) D(sa f-2.5) S(i1 i1) I99999999999999999999 b[120] c1,-2 S())"
    );
}
