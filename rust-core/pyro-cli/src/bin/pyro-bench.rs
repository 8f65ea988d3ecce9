//! pyro-bench: the Rust half of `scripts/bench`.
//!
//! - `server`: a Rust daemon serving the bench object `bench` (ping, add, echo, oneway
//!   notify, count) on 127.0.0.1; prints its URI on the first stdout line.
//! - `raw-server` / `raw-client`: the floor, a plain TCP 32-byte request/response round
//!   trip on loopback (no framing, no codec).
//! - `client`: the load generator: N connections (one Proxy each, tokio tasks) running a
//!   workload for a bounded time and call count per run.
//! - `ns`: name server lookups or register+remove pairs against any Pyro4 name server.
//! - `codec`: ops/s of the pyro-codec serializers on the bench payloads.
//! - `codec-marks`: the same operations between `getppid()` markers, for
//!   `valgrind --tool=callgrind --dump-before=*getppid*` instruction counts per op.
//!
//! Every measuring command prints one JSON object on stdout. Every loop is bounded by
//! both a count and a deadline; all traffic stays on 127.0.0.1.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use pyro_runtime::daemon::{DaemonBuilder, Exposed, Fault};
use pyro_runtime::{Batch, NameServer, Proxy};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "pyro-bench",
    about = "pyro-rs benchmark helper (used by scripts/bench)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Run-shape options shared by the measuring commands.
#[derive(clap::Args, Debug, Clone, Copy)]
struct RunShape {
    /// number of measured runs
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// seconds per run (upper bound)
    #[arg(long, default_value_t = 0.5)]
    duration: f64,
    /// calls per run (upper bound)
    #[arg(long, default_value_t = 1_000_000)]
    max_calls: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the bench object on 127.0.0.1 (prints the URI).
    Server {
        /// port (0 = any free port)
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Raw TCP 32-byte echo server (prints host:port).
    RawServer {
        /// serve on the tools' tokio runtime (epoll, a task per connection) instead of a
        /// thread per connection: the floor for many connections
        #[arg(long)]
        tokio: bool,
    },
    /// Raw TCP 32-byte round trips against a raw-server.
    RawClient {
        /// host:port of the raw server
        #[arg(long)]
        addr: String,
        /// concurrent connections (more than one: tokio tasks on the tools' runtime)
        #[arg(long, default_value_t = 1)]
        conns: usize,
        #[command(flatten)]
        shape: RunShape,
    },
    /// Load generator against the bench object.
    Client {
        /// URI of the bench object
        #[arg(long)]
        uri: String,
        /// ping, add, dict, bytes, ints, oneway, batch
        #[arg(long)]
        workload: String,
        /// concurrent connections
        #[arg(long, default_value_t = 1)]
        conns: usize,
        #[command(flatten)]
        shape: RunShape,
    },
    /// Name server load: lookup, or register+remove pairs.
    Ns {
        /// URI of the name server
        #[arg(long)]
        uri: String,
        /// lookup or register
        #[arg(long)]
        op: String,
        #[command(flatten)]
        shape: RunShape,
    },
    /// Codec ops/s on the bench payloads.
    Codec {
        #[command(flatten)]
        shape: RunShape,
    },
    /// Codec ops between getppid() markers (run under callgrind).
    CodecMarks {
        /// operations per segment
        #[arg(long, default_value_t = 3)]
        iters: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Server { port } => server(port),
        Cmd::RawServer { tokio: false } => raw_server(),
        Cmd::RawServer { tokio: true } => runtime()?.block_on(raw_server_tokio()),
        Cmd::RawClient {
            addr,
            conns: 1,
            shape,
        } => raw_client(&addr, shape),
        Cmd::RawClient { addr, conns, shape } => {
            runtime()?.block_on(raw_client_many(&addr, conns, shape))
        }
        Cmd::Client {
            uri,
            workload,
            conns,
            shape,
        } => runtime()?.block_on(client(&uri, &workload, conns, shape)),
        Cmd::Ns { uri, op, shape } => runtime()?.block_on(ns(&uri, &op, shape)),
        Cmd::Codec { shape } => codec(shape),
        Cmd::CodecMarks { iters } => codec_marks(iters),
    }
}

/// The tools' runtime (current-thread under `taskset -c 0`, see `pyro_cli::runtime`).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(pyro_cli::runtime()?)
}

// ---- payloads (the same as scripts/bench_py.py builds) ---------------------------------

/// The ~10-field mixed dict.
fn payload_dict() -> Value {
    let mut d = Dict::new();
    d.set("name", Value::str("alice"));
    d.set("age", Value::Int(42));
    d.set("score", Value::Float(1234.5678));
    d.set("active", Value::Bool(true));
    d.set(
        "tags",
        Value::List(vec![Value::str("a"), Value::str("b"), Value::str("c")]),
    );
    let mut nested = Dict::new();
    nested.set("x", Value::Int(1));
    nested.set("y", Value::Int(2));
    d.set("nested", Value::Dict(nested));
    d.set("none", Value::None);
    d.set(
        "tuple",
        Value::Tuple(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
    );
    d.set("text", Value::str("x".repeat(20)));
    d.set("neg", Value::Int(-17));
    Value::Dict(d)
}

/// `list(range(10000))`.
fn payload_ints() -> Value {
    Value::List((0..10_000).map(Value::Int).collect())
}

/// `bytes(range(256)) * 4096`: 1 MiB holding every byte value.
fn payload_bytes() -> Value {
    Value::Bytes((0..1_048_576u32).map(|i| (i % 256) as u8).collect())
}

/// 1,000,000 characters of ASCII text with a newline per line (as bench_py.py).
fn payload_text() -> Value {
    let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n";
    let mut s = line.repeat(1_000_000 / line.len() + 1);
    s.truncate(1_000_000);
    Value::Str(s)
}

// ---- server ------------------------------------------------------------------------------

struct BenchState {
    count: AtomicI64,
}

fn server(port: u16) -> Result<()> {
    runtime()?.block_on(async move {
        let daemon = DaemonBuilder::new()
            .host("127.0.0.1")
            .port(port)
            .bind()
            .await?;
        let obj = Exposed::new(
            "BenchObject",
            BenchState {
                count: AtomicI64::new(0),
            },
        )
        .method("ping", |_s, _a| Ok(Value::None))
        .method("add", |_s, a| {
            let v = a.bind(&["a", "b"])?;
            match (v[0].as_i64(), v[1].as_i64()) {
                (Some(x), Some(y)) => Ok(Value::Int(x.wrapping_add(y))),
                _ => Err(Fault::type_error("add() wants two ints")),
            }
        })
        .method("echo", |_s, a| Ok(a.bind(&["x"])?.remove(0)))
        .oneway("notify", |s, _a| {
            s.count.fetch_add(1, Ordering::Relaxed);
            Ok(Value::None)
        })
        .method("count", |s, _a| {
            Ok(Value::Int(s.count.load(Ordering::Relaxed)))
        });
        let uri = daemon.register(obj, Some("bench"), false)?;
        println!("{uri}");
        std::io::stdout().flush()?;
        daemon.run().await?;
        Ok(())
    })
}

// ---- raw TCP floor -------------------------------------------------------------------------

fn raw_server() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let mut s = stream?;
        s.set_nodelay(true)?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 32];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

fn raw_client(addr: &str, shape: RunShape) -> Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; 32];
    let mut one = |s: &mut TcpStream| -> Result<()> {
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        Ok(())
    };
    for _ in 0..200 {
        one(&mut s)?;
    }
    let mut rates = Vec::new();
    let mut total = 200u64;
    for _ in 0..shape.runs {
        let start = Instant::now();
        let deadline = start + secs(shape.duration);
        let mut n = 0u64;
        while n < shape.max_calls && (n % 64 != 0 || Instant::now() < deadline) {
            one(&mut s)?;
            n += 1;
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
        total += n;
    }
    print_runs(&rates, total);
    Ok(())
}

/// The raw echo on tokio: one task per connection on the tools' runtime.
async fn raw_server_tokio() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = [0u8; 32];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Raw 32-byte round trips on `conns` connections at once (tokio tasks), counted
/// together: the floor for the many-connection Pyro rows.
async fn raw_client_many(addr: &str, conns: usize, shape: RunShape) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    let mut rates = Vec::new();
    let mut total = 0u64;
    let per_conn = shape.max_calls.div_ceil(conns as u64).max(1);
    for run in 0..=shape.runs {
        let start = Instant::now();
        let deadline = start + secs(shape.duration);
        let mut tasks = Vec::with_capacity(conns);
        for mut s in streams.drain(..) {
            tasks.push(tokio::spawn(async move {
                let mut buf = [7u8; 32];
                let mut n = 0u64;
                while n < per_conn && (n % 16 != 0 || Instant::now() < deadline) {
                    s.write_all(&buf).await?;
                    s.read_exact(&mut buf).await?;
                    n += 1;
                }
                Ok::<_, std::io::Error>((s, n))
            }));
        }
        let mut calls = 0u64;
        for t in tasks {
            let (s, n) = t.await??;
            streams.push(s);
            calls += n;
        }
        // Run 0 is the warm-up.
        if run > 0 {
            rates.push(calls as f64 / start.elapsed().as_secs_f64());
            total += calls;
        }
    }
    print_runs(&rates, total);
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.001, 600.0))
}

fn print_runs(rates: &[f64], total: u64) {
    let list: Vec<String> = rates.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "{{\"runs\": [{}], \"total_calls\": {total}}}",
        list.join(", ")
    );
}

// ---- Pyro load generator ------------------------------------------------------------------

/// One unit of a workload on one proxy; returns the number of calls it stands for.
async fn unit(p: &mut Proxy, workload: &str, payload: &Value) -> Result<u64> {
    match workload {
        "ping" => {
            p.call("ping", vec![], Dict::new()).await?;
            Ok(1)
        }
        "add" => {
            p.call("add", vec![Value::Int(1), Value::Int(2)], Dict::new())
                .await?;
            Ok(1)
        }
        "dict" | "bytes" | "ints" => {
            let r = p.call("echo", vec![payload.clone()], Dict::new()).await?;
            if matches!(r, Value::None) {
                bail!("echo returned None");
            }
            Ok(1)
        }
        "batch" => {
            let mut b = Batch::new();
            for i in 0..1000 {
                b.call("add", vec![Value::Int(i), Value::Int(1)], Dict::new());
            }
            let results = p.run_batch(b).await?;
            if results.len() != 1000 {
                bail!("batch returned {} results", results.len());
            }
            Ok(1000)
        }
        other => bail!("unknown workload {other}"),
    }
}

fn payload_for(workload: &str) -> Value {
    match workload {
        "dict" => payload_dict(),
        "bytes" => payload_bytes(),
        "ints" => payload_ints(),
        _ => Value::None,
    }
}

async fn client(uri: &str, workload: &str, conns: usize, shape: RunShape) -> Result<()> {
    let payload = payload_for(workload);
    let mut proxies = Vec::new();
    for _ in 0..conns.max(1) {
        let mut p = Proxy::new(uri)?;
        p.set_timeout(Some(Duration::from_secs(30)));
        p.bind().await?;
        proxies.push(p);
    }
    if workload == "oneway" {
        return oneway(&mut proxies[0], shape).await;
    }
    // Warm up every connection (metadata, buffers).
    let mut total = 0u64;
    for p in &mut proxies {
        for _ in 0..3 {
            total += unit(p, workload, &payload).await?;
        }
    }
    let mut rates = Vec::new();
    for _ in 0..shape.runs {
        let start = Instant::now();
        let deadline = start + secs(shape.duration);
        let per_conn = (shape.max_calls / proxies.len() as u64).max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for mut p in proxies.drain(..) {
            let workload = workload.to_string();
            let payload = payload.clone();
            tasks.spawn(async move {
                let mut n = 0u64;
                while n < per_conn && Instant::now() < deadline {
                    n += unit(&mut p, &workload, &payload).await?;
                }
                Ok::<_, anyhow::Error>((p, n))
            });
        }
        let mut calls = 0;
        while let Some(r) = tasks.join_next().await {
            let (p, n) = r??;
            proxies.push(p);
            calls += n;
        }
        rates.push(calls as f64 / start.elapsed().as_secs_f64());
        total += calls;
    }
    print_runs(&rates, total);
    Ok(())
}

/// Oneway completion rate: send notify() oneway for the run time, then poll count()
/// until the server has run them all; rate = sent / time until all completed.
async fn oneway(p: &mut Proxy, shape: RunShape) -> Result<()> {
    let count = |v: Value| v.as_i64().ok_or_else(|| anyhow!("count() is not an int"));
    let mut rates = Vec::new();
    let mut total = 0u64;
    for _ in 0..shape.runs {
        let before = count(p.call("count", vec![], Dict::new()).await?)?;
        let start = Instant::now();
        let deadline = start + secs(shape.duration);
        let mut sent = 0i64;
        while (sent as u64) < shape.max_calls && Instant::now() < deadline {
            p.call_oneway("notify", vec![], Dict::new()).await?;
            sent += 1;
        }
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let now = count(p.call("count", vec![], Dict::new()).await?)?;
            if now - before >= sent {
                break;
            }
            if Instant::now() > give_up {
                bail!("oneway calls did not complete: {} of {sent}", now - before);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        rates.push(sent as f64 / start.elapsed().as_secs_f64());
        total += sent as u64;
    }
    print_runs(&rates, total);
    Ok(())
}

// ---- name server ---------------------------------------------------------------------------

async fn ns(uri: &str, op: &str, shape: RunShape) -> Result<()> {
    let mut ns = NameServer::from_uri(uri)?;
    let target = "PYRO:bench.target@127.0.0.1:9";
    ns.register("bench.target", target, false, None).await?;
    let mut rates = Vec::new();
    let mut total = 0u64;
    for run in 0..shape.runs + 1 {
        let start = Instant::now();
        let deadline = start + secs(if run == 0 { 0.05 } else { shape.duration });
        let mut n = 0u64;
        while n < shape.max_calls && Instant::now() < deadline {
            match op {
                "lookup" => {
                    ns.lookup("bench.target").await?;
                }
                "register" => {
                    ns.register("bench.tmp", target, false, None).await?;
                    ns.remove(Some("bench.tmp"), None, None).await?;
                }
                other => bail!("unknown ns op {other}"),
            }
            n += 1;
        }
        // Run 0 is the warm-up.
        if run > 0 {
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
        total += n;
    }
    ns.remove(Some("bench.target"), None, None).await?;
    print_runs(&rates, total);
    Ok(())
}

// ---- codecs ----------------------------------------------------------------------------------

const CODECS: [SerializerKind; 4] = [
    SerializerKind::Serpent,
    SerializerKind::Pickle,
    SerializerKind::Json,
    SerializerKind::Marshal,
];

fn payloads() -> Vec<(&'static str, Value)> {
    vec![
        ("dict", payload_dict()),
        ("ints", payload_ints()),
        ("text", payload_text()),
    ]
}

/// One codec operation: encode the value, or decode the encoded bytes.
fn codec_op(kind: SerializerKind, op: &str, value: &Value, encoded: &[u8]) -> Result<usize> {
    Ok(if op == "dumps" {
        kind.encode(value)?.len()
    } else {
        let v = kind.decode(encoded, &DecodeLimits::default())?;
        usize::from(!matches!(v, Value::None))
    })
}

fn codec(shape: RunShape) -> Result<()> {
    let mut rows = Vec::new();
    for kind in CODECS {
        for (name, value) in payloads() {
            let encoded = kind
                .encode(&value)
                .with_context(|| format!("{} {name}", kind.name()))?;
            for op in ["dumps", "loads"] {
                for _ in 0..3 {
                    std::hint::black_box(codec_op(kind, op, &value, &encoded)?);
                }
                let mut rates = Vec::new();
                for _ in 0..shape.runs {
                    let start = Instant::now();
                    let deadline = start + secs(shape.duration);
                    let mut n = 0u64;
                    while n < shape.max_calls && Instant::now() < deadline {
                        std::hint::black_box(codec_op(kind, op, &value, &encoded)?);
                        n += 1;
                    }
                    rates.push(format!("{:.3}", n as f64 / start.elapsed().as_secs_f64()));
                }
                rows.push(format!(
                    "{{\"codec\": \"{}\", \"payload\": \"{name}\", \"op\": \"{op}\", \"runs\": [{}], \"size\": {}}}",
                    kind.name(),
                    rates.join(", "),
                    encoded.len()
                ));
            }
        }
    }
    println!("{{\"rows\": [{}]}}", rows.join(", "));
    Ok(())
}

/// A marker callgrind dumps before (`--dump-before=*getppid*`): the counts between two
/// markers are exactly one segment of operations.
fn marker() {
    std::hint::black_box(std::os::unix::process::parent_id());
}

fn codec_marks(iters: usize) -> Result<()> {
    let mut segments = Vec::new();
    let mut prepared = Vec::new();
    for kind in CODECS {
        for (name, value) in payloads() {
            let encoded = kind.encode(&value)?;
            for op in ["dumps", "loads"] {
                // One warm-up so lazy initialisation is not counted.
                codec_op(kind, op, &value, &encoded)?;
                segments.push(format!("\"{}/{name}/{op}\"", kind.name()));
            }
            prepared.push((kind, value, encoded));
        }
    }
    marker();
    for (kind, value, encoded) in &prepared {
        for op in ["dumps", "loads"] {
            for _ in 0..iters {
                std::hint::black_box(codec_op(*kind, op, value, encoded)?);
            }
            marker();
        }
    }
    println!(
        "{{\"iters\": {iters}, \"segments\": [{}]}}",
        segments.join(", ")
    );
    Ok(())
}
