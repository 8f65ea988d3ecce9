//! The serde bridge with a few derived types.

use pyro_codec::serde_bridge::{from_value, to_value};
use pyro_codec::{json, Dict, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Metadata {
    methods: Vec<String>,
    oneway: Vec<String>,
    attrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i64, String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    name: String,
    age: u8,
    score: f64,
    big: u64,
    tags: Option<Vec<String>>,
    none: Option<i32>,
    point: (i32, i32),
    #[serde(with = "serde_bytes_like")]
    blob: Vec<u8>,
    shapes: Vec<Shape>,
    map: BTreeMap<String, i64>,
    unit: (),
}

/// serialize_bytes / deserialize_bytes without pulling in serde_bytes.
mod serde_bytes_like {
    use serde::{Deserializer, Serializer};
    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_bytes(V)
    }
}

fn sample() -> Everything {
    Everything {
        name: "héllo".into(),
        age: 42,
        score: 2.5,
        big: u64::MAX,
        tags: Some(vec!["a".into(), "b".into()]),
        none: None,
        point: (1, -2),
        blob: vec![0, 1, 255],
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(7, "x".into()),
        ],
        map: [("k".to_string(), 1i64)].into_iter().collect(),
        unit: (),
    }
}

#[test]
fn struct_shape_and_round_trip() {
    let v = to_value(&sample()).unwrap();
    let d = v.as_dict().unwrap();
    assert_eq!(d.get_str("name"), Some(&Value::str("héllo")));
    assert!(matches!(d.get_str("big"), Some(Value::BigInt(_))));
    assert_eq!(d.get_str("none"), Some(&Value::None));
    assert_eq!(
        d.get_str("point"),
        Some(&Value::Tuple(vec![Value::Int(1), Value::Int(-2)]))
    );
    assert_eq!(d.get_str("blob"), Some(&Value::Bytes(vec![0, 1, 255])));
    assert_eq!(d.get_str("unit"), Some(&Value::None));
    // Field order is declaration order.
    let keys: Vec<_> = d
        .iter()
        .map(|(k, _)| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys[..3], ["name", "age", "score"]);
    // Enums are externally tagged like serde_json.
    let shapes = d.get_str("shapes").unwrap().as_seq().unwrap();
    assert_eq!(shapes[0], Value::str("Empty"));
    assert_eq!(
        shapes[1].as_dict().unwrap().get_str("Circle"),
        Some(&Value::Float(1.5))
    );
    let rect = shapes[2]
        .as_dict()
        .unwrap()
        .get_str("Rect")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(rect.get_str("w"), Some(&Value::Int(2)));
    let back: Everything = from_value(&v).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn lenient_reading() {
    // Metadata as Pyro sends it: sets, tuples or lists.
    let v = Value::Dict(Dict::from_unique_pairs(vec![
        (
            Value::str("methods"),
            Value::Set(vec![Value::str("a"), Value::str("b")]),
        ),
        (Value::str("oneway"), Value::Tuple(vec![])),
        (Value::str("attrs"), Value::List(vec![Value::str("p")])),
    ]));
    let m: Metadata = from_value(&v).unwrap();
    assert_eq!(m.methods, vec!["a", "b"]);
    assert_eq!(m.attrs, vec!["p"]);
    // An int where a float is expected.
    let f: f64 = from_value(&Value::Int(3)).unwrap();
    assert_eq!(f, 3.0);
    // serpent's base64 bytes dict.
    #[derive(Deserialize)]
    struct B(#[serde(with = "serde_bytes_like")] Vec<u8>);
    let d = Value::Dict(Dict::from_unique_pairs(vec![
        (Value::str("data"), Value::str("AAE=")),
        (Value::str("encoding"), Value::str("base64")),
    ]));
    let B(b) = from_value(&d).unwrap();
    assert_eq!(b, vec![0, 1]);
}

#[test]
fn type_errors_are_errors() {
    assert!(from_value::<Metadata>(&Value::Int(1)).is_err());
    assert!(from_value::<u8>(&Value::Int(300)).is_err());
    assert!(from_value::<String>(&Value::None).is_err());
    assert!(from_value::<Shape>(&Value::str("Nope")).is_err());
    // A map with list keys is unhashable, as in Python.
    let mut m = std::collections::HashMap::new();
    m.insert(vec![1], 2);
    assert!(to_value(&m).is_err());
}

#[test]
fn through_json() {
    let v = to_value(&Metadata {
        methods: vec!["x".into()],
        oneway: vec![],
        attrs: vec![],
    })
    .unwrap();
    let bytes = json::to_vec(&v).unwrap();
    assert_eq!(bytes, br#"{"methods": ["x"], "oneway": [], "attrs": []}"#);
    let back: Metadata = from_value(&json::from_slice(&bytes).unwrap()).unwrap();
    assert_eq!(back.methods, vec!["x"]);
}
