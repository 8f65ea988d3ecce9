//! marshal against vectors produced by CPython 3.11's marshal (and Pyro4's
//! MarshalSerializer for the reader-only cases).

mod json_desc;

use json_desc::{assert_same, cases, parse, show};
use pyro_codec::{marshal, DecodeLimits};

#[test]
fn golden_vectors() {
    let limits = DecodeLimits::default();
    let (mut enc, mut dec) = (0, 0);
    for c in cases("marshal") {
        let data = c.data.as_deref().unwrap();
        match c.fields[0].as_str() {
            "enc" => {
                let input = parse(&c.fields[1]);
                let got = marshal::to_vec(&input).unwrap_or_else(|e| panic!("{}: {e}", c.name));
                assert_eq!(
                    show(&got),
                    show(data),
                    "{}: encoding differs for {input:?}",
                    c.name
                );
                let back = marshal::from_slice_with(data, &limits)
                    .unwrap_or_else(|e| panic!("{}: {e}", c.name));
                assert_same(&c.name, &back, &parse(&c.fields[2]));
                enc += 1;
            }
            "dec" => {
                let got = marshal::from_slice_with(data, &limits);
                if c.fields[1] == "ERR" {
                    assert!(
                        got.is_err(),
                        "{}: Python rejects {:?}, we gave {got:?}",
                        c.name,
                        show(data)
                    );
                } else {
                    let got =
                        got.unwrap_or_else(|e| panic!("{}: {e} for {:?}", c.name, show(data)));
                    assert_same(&c.name, &got, &parse(&c.fields[1]));
                }
                dec += 1;
            }
            other => panic!("unknown mode {other}"),
        }
    }
    assert!(enc > 50 && dec > 15, "{enc} {dec}");
}
