//! Call a Python Pyro4 object from Rust.
//!
//! Start Pyro4's echo server first: `python -m Pyro4.test.echoserver -H 127.0.0.1 -p 9998`,
//! then `cargo run -p pyro-runtime --example quickstart_client`.

use pyro_codec::{Dict, Value};
use pyro_runtime::blocking::BlockingProxy;

fn main() -> Result<(), pyro_runtime::Error> {
    let mut echo = BlockingProxy::new("PYRO:test.echoserver@127.0.0.1:9998")?;
    let reply = echo.call("echo", vec![Value::from("hello")], Dict::new())?;
    assert_eq!(reply, Value::from("hello"));
    // Remote exceptions keep their Python class, message and traceback.
    if let Err(e) = echo.call("error", vec![], Dict::new()) {
        println!(
            "{} raised remotely:\n{}",
            e.class_name(),
            e.remote_traceback().unwrap_or_default()
        );
    }
    Ok(())
}
