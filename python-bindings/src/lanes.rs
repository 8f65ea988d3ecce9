//! Lanes: the threads a Python daemon's connections run on.
//!
//! A lane is one OS thread with its own current-thread tokio runtime. Each accepted
//! connection is handed to a lane ([`pyro_runtime::daemon::AcceptedConnection`]) and
//! does all of its socket IO there; Python methods called over that connection run on
//! the same thread, inline, with the GIL taken for the call only. A request therefore
//! costs one wake-up of one thread, as in Pyro4's thread-pool server, instead of a
//! hand-off from an IO thread to a Python worker and back.
//!
//! SERVERTYPE `thread` gives each connection a lane of its own while there are fewer
//! than THREADPOOL_SIZE connections (idle lanes are reused); past that, connections
//! share the least busy lane rather than being refused. SERVERTYPE `multiplex` is one
//! lane for every connection: requests are handled one at a time, as Pyro4's
//! multiplexed server does.

use pyo3::prelude::*;
use pyro_runtime::daemon::AcceptedConnection;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

thread_local! {
    static ON_LANE: Cell<bool> = const { Cell::new(false) };
}

/// True on a lane thread: Python can be called inline (the thread has its own Python
/// thread state and holds no GIL between calls).
pub(crate) fn on_lane() -> bool {
    ON_LANE.with(Cell::get)
}

/// How long a closing lane waits for its connections to end after the daemon's own
/// drain (which already waited for running requests).
const LANE_DRAIN: Duration = Duration::from_secs(2);

struct Lane {
    tx: mpsc::UnboundedSender<AcceptedConnection>,
    /// Connections currently on this lane.
    load: Arc<AtomicUsize>,
}

/// The lanes of one daemon.
pub(crate) struct Lanes {
    lanes: Mutex<Vec<Lane>>,
    max: usize,
    name: String,
}

impl Lanes {
    /// At most `max` lanes (threads named `<name>-<n>`).
    pub(crate) fn new(max: usize, name: &str) -> Arc<Lanes> {
        Arc::new(Lanes {
            lanes: Mutex::new(Vec::new()),
            max: max.max(1),
            name: name.to_string(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand a connection to an idle lane, a new lane, or the least busy one.
    pub(crate) fn assign(&self, conn: AcceptedConnection) {
        let mut lanes = self.lock();
        lanes.retain(|l| !l.tx.is_closed());
        let idle = lanes
            .iter()
            .position(|l| l.load.load(Ordering::Relaxed) == 0);
        let index = match idle {
            Some(i) => Some(i),
            None if lanes.len() < self.max => match self.start_lane(lanes.len() + 1) {
                Some(lane) => {
                    lanes.push(lane);
                    Some(lanes.len() - 1)
                }
                None => None,
            },
            None => None,
        };
        let index = index
            .or_else(|| (0..lanes.len()).min_by_key(|&i| lanes[i].load.load(Ordering::Relaxed)));
        let Some(i) = index else {
            tracing::warn!(addr = %conn.client_addr(), "no lane thread for a connection");
            return;
        };
        lanes[i].load.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = lanes[i].tx.send(conn) {
            lanes[i].load.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(addr = %e.0.client_addr(), "lane closed; connection dropped");
        }
    }

    fn start_lane(&self, n: usize) -> Option<Lane> {
        let (tx, rx) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        let l = load.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", self.name))
            .spawn(move || lane_main(rx, l));
        match spawned {
            Ok(_) => Some(Lane { tx, load }),
            Err(e) => {
                tracing::warn!("cannot start a lane thread: {e}");
                None
            }
        }
    }

    /// Take no more connections; each lane ends when its connections have ended.
    pub(crate) fn close(&self) {
        self.lock().clear();
    }
}

fn lane_main(mut rx: mpsc::UnboundedReceiver<AcceptedConnection>, load: Arc<AtomicUsize>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("cannot start a lane runtime: {e}");
            return;
        }
    };
    // Attach once, so the thread keeps one Python thread state (and its
    // `threading.local` data, such as current_context) for its whole life; the GIL is
    // released except while a Python call runs.
    Python::attach(|py| {
        ON_LANE.with(|c| c.set(true));
        py.detach(|| {
            rt.block_on(async {
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        next = rx.recv() => match next {
                            Some(conn) => {
                                let load = load.clone();
                                conns.spawn(async move {
                                    conn.serve().await;
                                    load.fetch_sub(1, Ordering::Relaxed);
                                });
                            }
                            None => break,
                        },
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
                let _ = tokio::time::timeout(LANE_DRAIN, async {
                    while conns.join_next().await.is_some() {}
                })
                .await;
            });
            // Dropping the runtime closes whatever did not end in time; the tasks own
            // Python objects only through the daemon core, which defers decrefs.
            drop(rt);
        });
        ON_LANE.with(|c| c.set(false));
    });
}
