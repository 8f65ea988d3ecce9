//! Serve a Rust object to Python Pyro4 clients.
//!
//! `cargo run -p pyro-runtime --example quickstart_server`, then from Python:
//! `Pyro4.Proxy("PYRO:greeter@127.0.0.1:9999").greet("Ada")`.

use pyro_codec::Value;
use pyro_runtime::{Daemon, Exposed, Fault};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let greeter = Exposed::new("Greeter", ()).method("greet", |_state, args| {
        let [name] = <[Value; 1]>::try_from(args.bind(&["name"])?).expect("one parameter");
        let name = name
            .as_str()
            .ok_or_else(|| Fault::type_error("name must be a str"))?;
        Ok(Value::from(format!("Hello, {name}!")))
    });
    let daemon = Daemon::builder()
        .host("127.0.0.1")
        .port(9999)
        .bind()
        .await?;
    let uri = daemon.register(greeter, Some("greeter"), false)?;
    println!("serving {uri}");
    daemon.run().await?;
    Ok(())
}
