//! The Rust name server client against Pyro4's real name server.

use interop_tests::{
    echo_server_registered, free_tcp_port, free_udp_port, name_server, name_server_with_broadcast,
    run_python,
};
use pyro_codec::{Dict, Value};
use pyro_runtime::{locate_ns_with, Config, Error, ListFilter, Proxy};
use pyro_wire::Uri;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config() -> Arc<Config> {
    Arc::new(Config {
        ns_host: "127.0.0.1".into(),
        broadcast_addrs: vec!["127.0.0.1".into()],
        ..Config::default()
    })
}

fn tags(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn remote_class(err: &Error) -> &str {
    err.remote()
        .map(|r| r.class_name.as_str())
        .unwrap_or("<not remote>")
}

#[tokio::test]
async fn register_lookup_list_metadata_remove() {
    let peer = name_server();
    let cfg = config();
    let mut ns = locate_ns_with(&cfg, Some("127.0.0.1"), Some(peer.port()), false, None)
        .await
        .unwrap();
    assert!(
        ns.proxy().is_connected(),
        "a directly located name server is bound"
    );
    ns.ping().await.unwrap();
    assert_eq!(ns.count().await.unwrap(), 1, "only the name server itself");

    ns.register(
        "test.a",
        "PYRO:obj_a@localhost:5555",
        false,
        Some(&tags(&["m1", "m2"])),
    )
    .await
    .unwrap();
    ns.register("test.b", "PYRO:obj_b@localhost:5556", false, None)
        .await
        .unwrap();
    ns.register(
        "other.c",
        "PYRO:obj_c@localhost:5557",
        false,
        Some(&tags(&["m2"])),
    )
    .await
    .unwrap();
    assert_eq!(ns.count().await.unwrap(), 4);

    assert_eq!(
        ns.lookup("test.a").await.unwrap(),
        Uri::parse("PYRO:obj_a@localhost:5555").unwrap()
    );
    let (uri, meta) = ns.lookup_with_metadata("test.a").await.unwrap();
    assert_eq!(uri.to_string(), "PYRO:obj_a@localhost:5555");
    assert_eq!(sorted(meta), tags(&["m1", "m2"]));
    let (_, meta) = ns.lookup_with_metadata("test.b").await.unwrap();
    assert!(meta.is_empty());

    let err = ns.lookup("nope").await.unwrap_err();
    assert_eq!(remote_class(&err), "Pyro4.errors.NamingError");
    assert!(err.to_string().contains("unknown name: nope"), "{err}");

    let err = ns
        .register("test.a", "PYRO:x@localhost:1", true, None)
        .await
        .unwrap_err();
    assert_eq!(remote_class(&err), "Pyro4.errors.NamingError");
    assert!(err.to_string().contains("name already registered"), "{err}");

    let names = |v: Vec<(String, String)>| sorted(v.into_iter().map(|(n, _)| n).collect());
    assert_eq!(
        names(ns.list(&ListFilter::Prefix("test.".into())).await.unwrap()),
        tags(&["test.a", "test.b"])
    );
    assert_eq!(
        names(ns.list(&ListFilter::Regex(r"t.*\.b".into())).await.unwrap()),
        tags(&["test.b"])
    );
    assert_eq!(
        names(
            ns.list(&ListFilter::MetadataAll(tags(&["m1", "m2"])))
                .await
                .unwrap()
        ),
        tags(&["test.a"])
    );
    assert_eq!(
        names(
            ns.list(&ListFilter::MetadataAny(tags(&["m2", "zz"])))
                .await
                .unwrap()
        ),
        tags(&["other.c", "test.a"])
    );
    let all = ns.list(&ListFilter::All).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all
        .iter()
        .any(|(n, u)| n == "Pyro.NameServer" && u == &peer.uri));

    let regs = ns
        .list_with_metadata(&ListFilter::Prefix("test.a".into()))
        .await
        .unwrap();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].uri, "PYRO:obj_a@localhost:5555");
    assert_eq!(sorted(regs[0].metadata.clone()), tags(&["m1", "m2"]));

    ns.set_metadata("test.b", &tags(&["m3"])).await.unwrap();
    assert_eq!(
        ns.lookup_with_metadata("test.b").await.unwrap().1,
        tags(&["m3"])
    );
    let err = ns.set_metadata("ghost", &tags(&["x"])).await.unwrap_err();
    assert_eq!(remote_class(&err), "Pyro4.errors.NamingError");

    // Python sees what Rust registered, with the same metadata.
    let seen = run_python(
        "import sys, Pyro4\n\
         ns = Pyro4.locateNS('127.0.0.1', int(sys.argv[1]))\n\
         u, m = ns.lookup('test.b', return_metadata=True)\n\
         print(str(u), sorted(m))",
        &[&peer.port().to_string()],
    );
    assert_eq!(seen, "PYRO:obj_b@localhost:5556 ['m3']");

    assert_eq!(ns.remove(Some("test.a"), None, None).await.unwrap(), 1);
    assert_eq!(ns.remove(Some("test.a"), None, None).await.unwrap(), 0);
    assert_eq!(
        ns.remove(Some("Pyro.NameServer"), None, None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(ns.remove(None, Some("test."), None).await.unwrap(), 1);
    assert_eq!(ns.remove(None, None, Some("oth.*")).await.unwrap(), 1);
    assert_eq!(ns.count().await.unwrap(), 1);

    // More than one filter at once is the name server's ValueError.
    let raw = ns
        .proxy_mut()
        .call("list", vec![], {
            let mut d = Dict::new();
            d.set("prefix", Value::str("a"));
            d.set("regex", Value::str("b"));
            d
        })
        .await
        .unwrap_err();
    assert_eq!(remote_class(&raw), "builtins.ValueError");
}

#[tokio::test]
async fn locate_without_host_and_failure_is_naming_error() {
    let peer = name_server();
    // NS_HOST is 127.0.0.1: the direct loopback attempt finds it.
    let cfg = Arc::new(Config {
        ns_port: peer.port(),
        ..(*config()).clone()
    });
    let mut ns = locate_ns_with(&cfg, None, None, false, None).await.unwrap();
    ns.ping().await.unwrap();
    assert_eq!(ns.proxy().uri().to_string(), peer.uri);

    // Nothing listening there: NamingError, quickly.
    let dead = free_tcp_port();
    let start = Instant::now();
    let err = locate_ns_with(&cfg, Some("127.0.0.1"), Some(dead), false, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Naming(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("Failed to locate the nameserver"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn locate_by_broadcast_on_loopback() {
    let bcport = free_udp_port();
    let peer = name_server_with_broadcast(bcport);
    // Neither the direct loopback try (TCP on bcport) nor the final fallback
    // (NS_HOST:NS_PORT) has a name server: only the broadcast answer can find it.
    let cfg = Arc::new(Config {
        ns_port: free_tcp_port(),
        ..(*config()).clone()
    });
    let start = Instant::now();
    let mut ns = locate_ns_with(&cfg, None, Some(bcport), true, None)
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        !ns.proxy().is_connected(),
        "found by broadcast: not bound yet, as in Pyro4"
    );
    assert_eq!(ns.proxy().uri().to_string(), peer.uri);
    ns.ping().await.unwrap();
    assert_eq!(ns.count().await.unwrap(), 1);
}

#[tokio::test]
async fn pyroname_and_pyrometa_resolution() {
    let ns_peer = name_server();
    let echo = echo_server_registered(ns_peer.port());
    let cfg = config();

    // PYRONAME with the name server location.
    let uri = format!("PYRONAME:test.echoserver@127.0.0.1:{}", ns_peer.port());
    let mut p = Proxy::with_config(Uri::parse(&uri).unwrap(), cfg.clone()).unwrap();
    p.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(
        p.call("echo", vec![Value::str("via ns")], Dict::new())
            .await
            .unwrap(),
        Value::str("via ns")
    );
    // bind() replaces the logical URI by the resolved one.
    let mut bound = Proxy::with_config(Uri::parse(&uri).unwrap(), cfg.clone()).unwrap();
    bound.bind().await.unwrap();
    assert_eq!(bound.uri().to_string(), echo.uri);

    // PYRONAME without location: name server discovery (NS_HOST/NS_PORT).
    let cfg2 = Arc::new(Config {
        ns_port: ns_peer.port(),
        ..(*cfg).clone()
    });
    let mut p = Proxy::with_config(Uri::parse("PYRONAME:test.echoserver").unwrap(), cfg2).unwrap();
    p.ping().await.unwrap();

    // Unknown name: the name server's NamingError.
    let bad = format!("PYRONAME:no.such.name@127.0.0.1:{}", ns_peer.port());
    let mut p = Proxy::with_config(Uri::parse(&bad).unwrap(), cfg.clone()).unwrap();
    let err = p.ping().await.unwrap_err();
    assert_eq!(remote_class(&err), "Pyro4.errors.NamingError", "{err}");

    // PYROMETA: tag the echo server's registration, then resolve by tag.
    let mut ns = locate_ns_with(&cfg, Some("127.0.0.1"), Some(ns_peer.port()), false, None)
        .await
        .unwrap();
    ns.set_metadata("test.echoserver", &tags(&["role:echo", "lang:python"]))
        .await
        .unwrap();
    let meta_uri = format!(
        "PYROMETA:role:echo,lang:python@127.0.0.1:{}",
        ns_peer.port()
    );
    let mut p = Proxy::with_config(Uri::parse(&meta_uri).unwrap(), cfg.clone()).unwrap();
    assert_eq!(
        p.call("echo", vec![Value::Int(7)], Dict::new())
            .await
            .unwrap(),
        Value::Int(7)
    );
    let none_uri = format!("PYROMETA:role:none@127.0.0.1:{}", ns_peer.port());
    let mut p = Proxy::with_config(Uri::parse(&none_uri).unwrap(), cfg).unwrap();
    let err = p.ping().await.unwrap_err();
    assert!(matches!(err, Error::Naming(_)), "{err:?}");
}
