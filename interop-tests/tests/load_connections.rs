//! Load: many concurrent client connections, each calling the pyro-rs daemon in a loop
//! for a bounded time; no call may fail, every connection is held at once, and the
//! daemon's memory (RSS of its own process, from /proc) stays flat from the first to
//! the last window of the run. A real Python Pyro4 client is served at the end.
//!
//! Default (the normal test run): 200 connections for 5 s, 1 s windows.
//! `PYRO_RS_LONG=1`: 1,000 connections for 60 s, 10 s windows (the full run recorded in
//! the README's reliability section). `PYRO_RS_LOAD_CONNS` / `PYRO_RS_LOAD_SECS`
//! override either.
//!
//! The daemon is this test binary re-run as a child process (`--ignored --exact
//! load_child_daemon`), so its RSS is the daemon's alone.

mod hostile_common;

use hostile_common::{rss_kib, Probe};
use pyro_codec::{Dict, Value};
use pyro_runtime::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
use pyro_runtime::daemon::DaemonBuilder;
use pyro_runtime::{Config, Proxy};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "PYRO_RS_LOAD_CHILD";

/// Not a test: the daemon process of [`concurrent_connections_call_without_errors_and_flat_memory`].
#[test]
#[ignore = "helper process, started by the load test"]
fn load_child_daemon() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let daemon = DaemonBuilder::with_config(Arc::new(Config::default()))
            .host("127.0.0.1")
            .port(0)
            .bind()
            .await
            .expect("bind");
        let uri = daemon
            .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
            .expect("register");
        println!("load uri: {uri}");
        daemon.run().await.expect("run");
    });
}

struct ChildDaemon(Child);

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn mean(xs: &[u64]) -> u64 {
    if xs.is_empty() {
        0
    } else {
        xs.iter().sum::<u64>() / xs.len() as u64
    }
}

#[test]
fn concurrent_connections_call_without_errors_and_flat_memory() {
    let long = std::env::var("PYRO_RS_LONG").is_ok_and(|v| v == "1");
    let conns = env_num("PYRO_RS_LOAD_CONNS").unwrap_or(if long { 1000 } else { 200 }) as usize;
    let secs = env_num("PYRO_RS_LOAD_SECS").unwrap_or(if long { 60 } else { 5 });
    let window = if secs >= 30 { 10 } else { 1 };

    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "load_child_daemon",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn daemon");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id().to_string();
    let _guard = ChildDaemon(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((_, uri)) = line.split_once("load uri: ") {
                let _ = tx.send(uri.trim().to_string());
            }
        }
    });
    let uri = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("daemon did not start");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let calls = Arc::new(AtomicU64::new(0));
    let (held, errors, samples, info) = rt.block_on(async {
        // Connect everything first, 100 at a time (the listen backlog is 100).
        let mut proxies = Vec::with_capacity(conns);
        for chunk in 0..conns.div_ceil(100) {
            let mut set = tokio::task::JoinSet::new();
            for _ in chunk * 100..((chunk + 1) * 100).min(conns) {
                let uri = uri.clone();
                set.spawn(async move {
                    let mut p = Proxy::new(&uri)?;
                    p.set_timeout(Some(Duration::from_secs(30)));
                    p.bind().await?;
                    Ok::<_, pyro_runtime::Error>(p)
                });
            }
            while let Some(r) = set.join_next().await {
                proxies.push(r.expect("connect task").expect("connect"));
            }
        }
        let held = proxies.len();
        // The daemon's own count of connections (its Pyro.Daemon info()).
        let mut admin = Proxy::new(&uri.replace(ECHO_OBJECT_NAME, "Pyro.Daemon")).expect("admin");
        let info = admin.call("info", vec![], Dict::new()).await.expect("info");
        admin.release();

        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut set = tokio::task::JoinSet::new();
        for (i, mut p) in proxies.into_iter().enumerate() {
            let calls = calls.clone();
            set.spawn(async move {
                let mut errors = Vec::new();
                let text = format!("conn {i}");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    match p.call("echo", vec![Value::str(&text)], Dict::new()).await {
                        Ok(v) if v == Value::str(&text) => n += 1,
                        Ok(v) => errors.push(format!("{i}: wrong answer {v:?}")),
                        Err(e) => errors.push(format!("{i}: {e}")),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                (n, errors)
            });
        }
        // RSS of the daemon process four times a second.
        let sampler = {
            let pid = pid.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                while Instant::now() < deadline {
                    tick.tick().await;
                    samples.push((Instant::now(), rss_kib(&pid)));
                }
                samples
            })
        };
        let mut errors = Vec::new();
        while let Some(r) = set.join_next().await {
            let (_n, e) = r.expect("client task");
            errors.extend(e);
        }
        let samples = sampler.await.expect("sampler");
        (held, errors, samples, info)
    });

    let total = calls.load(Ordering::Relaxed);
    let start = samples.first().map(|s| s.0).expect("samples");
    let end = samples.last().map(|s| s.0).expect("samples");
    let first: Vec<u64> = samples
        .iter()
        .filter(|s| s.0.duration_since(start) < Duration::from_secs(window))
        .map(|s| s.1)
        .collect();
    let last: Vec<u64> = samples
        .iter()
        .filter(|s| end.duration_since(s.0) < Duration::from_secs(window))
        .map(|s| s.1)
        .collect();
    let (rss_first, rss_last) = (mean(&first), mean(&last));
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    // One reading per window, for the record.
    let trace: Vec<u64> = samples
        .iter()
        .step_by((window * 4) as usize)
        .map(|s| s.1)
        .collect();
    eprintln!("daemon RSS every {window} s (KiB): {trace:?}");
    eprintln!(
        "load: {held} connections held, {total} calls in {secs} s ({:.0}/s), {} errors; daemon RSS \
         first {window} s {rss_first} KiB, last {window} s {rss_last} KiB, peak {peak} KiB; {info:?}",
        total as f64 / secs as f64,
        errors.len()
    );
    assert_eq!(held, conns, "not every connection was made");
    assert!(
        errors.is_empty(),
        "{} failed calls, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        total >= conns as u64,
        "every connection called at least once"
    );
    let Value::Str(info) = info else {
        panic!("info() is {info:?}")
    };
    // The admin connection asking for info() is one more.
    assert!(
        info.contains(&format!("; {} connections>", conns + 1)),
        "the daemon counts {conns} + 1 connections: {info}"
    );
    // Flat: the last window may not exceed the first by more than 10 % (+ 4 MiB slack
    // for allocator noise in the short run).
    assert!(
        rss_last <= rss_first + rss_first / 10 + 4096,
        "daemon RSS grew from {rss_first} KiB to {rss_last} KiB"
    );

    // A real Pyro4 client after the load.
    let mut probe = Probe::start();
    probe.assert_echo(&uri, "the load run");
}
