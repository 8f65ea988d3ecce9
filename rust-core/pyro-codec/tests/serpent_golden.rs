//! Golden vectors from the real serpent 1.43 (scripts/golden/gen_serpent.py): the Rust
//! encoder must produce the same bytes, and parsing those bytes must give what
//! `serpent.loads` gave (or fail where it failed).

use num_bigint::BigInt;
use pyro_codec::serpent::{self, EncodeOptions};
use pyro_codec::{Dict, Value};

const GOLDEN: &[u8] = include_bytes!("data/serpent/golden.txt");
const FIXTURE: &[u8] = include_bytes!("data/serpent/testserpent.utf8.bin");

struct Case<'a> {
    name: String,
    options: EncodeOptions,
    input: Option<Value>,
    loads: Option<Value>,       // None: serpent.loads raised
    expected: Option<&'a [u8]>, // None: serpent.dumps raised (or parse-only case)
    dumps_error: bool,
}

fn line<'a>(data: &'a [u8], pos: &mut usize) -> &'a str {
    let end = data[*pos..]
        .iter()
        .position(|&c| c == b'\n')
        .map(|i| *pos + i)
        .unwrap();
    let s = std::str::from_utf8(&data[*pos..end]).unwrap();
    *pos = end + 1;
    s
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f64_bits(s: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(s, 16).unwrap())
}

/// Rebuild a value from the generator's prefix-notation tree.
fn tree<'a>(tokens: &mut impl Iterator<Item = &'a str>) -> Value {
    let tok = tokens.next().expect("truncated tree");
    let (tag, arg) = tok.split_once(':').unwrap_or((tok, ""));
    let mut items = |n: &str| -> Vec<Value> {
        (0..n.parse::<usize>().unwrap())
            .map(|_| tree(tokens))
            .collect()
    };
    match tag {
        "N" => Value::None,
        "T" => Value::Bool(true),
        "F" => Value::Bool(false),
        "i" => Value::from_bigint(BigInt::parse_bytes(arg.as_bytes(), 16).unwrap()),
        "f" => Value::Float(f64_bits(arg)),
        "c" => {
            let (re, im) = arg.split_once(':').unwrap();
            Value::Complex(f64_bits(re), f64_bits(im))
        }
        "s" => Value::Str(String::from_utf8(hex(arg)).unwrap()),
        "b" => Value::Bytes(hex(arg)),
        "tuple" => Value::Tuple(items(arg)),
        "list" => Value::List(items(arg)),
        "set" => Value::Set(items(arg)),
        "dict" => {
            let flat = (0..arg.parse::<usize>().unwrap() * 2)
                .map(|_| tree(tokens))
                .collect::<Vec<_>>();
            let mut pairs = Vec::new();
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Value::Dict(Dict::from_unique_pairs(pairs))
        }
        other => panic!("unknown tree tag {other}"),
    }
}

fn parse_tree(s: &str) -> Value {
    let mut tokens = s.split(' ');
    let v = tree(&mut tokens);
    assert!(tokens.next().is_none(), "trailing tree tokens");
    v
}

fn cases() -> Vec<Case<'static>> {
    let data = GOLDEN;
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < data.len() {
        let head = line(data, &mut pos);
        let head = head.strip_prefix("=== ").expect("block header");
        let mut parts = head.split(' ');
        let name = parts.next().unwrap().to_string();
        let indent = parts.next() == Some("indent=1");
        let bytes_repr = parts.next() == Some("bytes_repr=1");
        let input = line(data, &mut pos).strip_prefix("input: ").unwrap();
        let loads = line(data, &mut pos).strip_prefix("loads: ").unwrap();
        let expected = line(data, &mut pos).strip_prefix("expected: ").unwrap();
        let (expected_bytes, dumps_error) = if expected.starts_with("!ERR") {
            (None, true)
        } else if expected == "-" {
            (None, false)
        } else {
            let n: usize = expected.parse().unwrap();
            let b = &data[pos..pos + n];
            pos += n;
            (Some(b), false)
        };
        // A data block ends with "\n\n" after the bytes; the others with one blank line.
        let sep: &[u8] = if expected_bytes.is_some() {
            b"\n\n"
        } else {
            b"\n"
        };
        assert_eq!(
            &data[pos..pos + sep.len()],
            sep,
            "block separator after {name}"
        );
        pos += sep.len();
        out.push(Case {
            name,
            options: EncodeOptions { indent, bytes_repr },
            input: (input != "-").then(|| parse_tree(input)),
            loads: (!loads.starts_with("!ERR")).then(|| parse_tree(loads)),
            expected: expected_bytes,
            dumps_error,
        });
    }
    out
}

/// Structural equality (floats bitwise) with sets compared regardless of order, since a
/// Python set's iteration order after `loads` need not be the source order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().all(|e| y.iter().any(|f| same(e, f)))
        }
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(e, f)| same(e, f))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned()
}

#[test]
fn golden_vectors_encode_byte_identical() {
    let cases = cases();
    assert!(cases.len() > 700, "golden file has {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let Some(input) = &c.input else { continue };
        let got = serpent::to_vec_with(input, &c.options);
        match (got, c.expected, c.dumps_error) {
            (Ok(got), Some(exp), _) if got == exp => {}
            (Ok(got), Some(exp), _) => failures.push(format!(
                "{}: got\n{}\nexpected\n{}",
                c.name,
                show(&got),
                show(exp)
            )),
            (Err(_), None, true) => {}
            (Ok(got), None, true) => {
                failures.push(format!("{}: expected an error, got {}", c.name, show(&got)))
            }
            (Err(e), _, _) => failures.push(format!("{}: unexpected error {e}", c.name)),
            (Ok(_), None, false) => unreachable!(),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn golden_vectors_parse_like_serpent_loads() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in cases() {
        let bytes = match (c.expected, c.input.is_none()) {
            (Some(b), _) => b,
            (None, true) => FIXTURE,
            (None, false) => continue,
        };
        checked += 1;
        match (serpent::from_slice(bytes), &c.loads) {
            (Ok(v), Some(want)) if same(&v, want) => {}
            (Ok(v), Some(want)) => {
                failures.push(format!("{}: parsed {v:?}\nwanted {want:?}", c.name))
            }
            (Err(_), None) => {}
            (Ok(v), None) => {
                failures.push(format!("{}: serpent.loads failed, we got {v:?}", c.name))
            }
            (Err(e), Some(_)) => failures.push(format!("{}: parse error {e}", c.name)),
        }
    }
    assert!(checked > 900, "only {checked} parse checks");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn serpent_fixture_numbers() {
    // serpent's own TestFiledump: obj["numbers"][3] == -3+8j
    let v = serpent::from_slice(FIXTURE).unwrap();
    let numbers = v
        .as_dict()
        .unwrap()
        .get_str("numbers")
        .unwrap()
        .as_seq()
        .unwrap();
    assert_eq!(numbers[3], Value::Complex(-3.0, 8.0));
}
