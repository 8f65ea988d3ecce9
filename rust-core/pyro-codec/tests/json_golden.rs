//! json against vectors produced by Python's json module with Pyro4's JsonSerializer.

mod json_desc;

use json_desc::{assert_same, cases, parse, show};
use pyro_codec::{json, DecodeLimits};

#[test]
fn golden_vectors() {
    let limits = DecodeLimits::default();
    let (mut enc, mut dec, mut err) = (0, 0, 0);
    for c in cases("json") {
        match c.fields[0].as_str() {
            "enc" => {
                let input = parse(&c.fields[1]);
                let want = c.data.as_deref().unwrap();
                let got = json::to_vec(&input).unwrap_or_else(|e| panic!("{}: {e}", c.name));
                assert_eq!(show(&got), show(want), "{}: encoding differs", c.name);
                let back = json::from_slice_with(want, &limits)
                    .unwrap_or_else(|e| panic!("{}: {e}", c.name));
                assert_same(&c.name, &back, &parse(&c.fields[2]));
                enc += 1;
            }
            "encerr" => {
                let input = parse(&c.fields[1]);
                assert!(
                    json::to_vec(&input).is_err(),
                    "{}: Pyro4 refuses this, we encoded it",
                    c.name
                );
                err += 1;
            }
            "dec" => {
                let data = c.data.as_deref().unwrap();
                let got = json::from_slice_with(data, &limits);
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
    assert!(enc > 50 && dec > 30 && err >= 5, "{enc} {dec} {err}");
}
