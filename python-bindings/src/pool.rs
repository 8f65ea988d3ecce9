//! The bounded pool of threads that run Python for a daemon (the granian `blocking.rs`
//! habit): the tokio workers only move bytes; every Python call is a job handed to one
//! of these threads, which attach to the interpreter once and release the GIL while
//! they wait for work. Pyro4's thread server has THREADPOOL_SIZE workers; its
//! multiplex server runs everything on one thread, which is a pool of size one here.
//!
//! Fire-and-forget jobs (ONEWAY_THREADED calls) are queued apart: a worker that finishes
//! a job runs the next queued one in the same GIL hold, so a stream of oneway calls is
//! left to the worker already running, and an idle worker takes one only when no worker
//! is busy or no job has started for [`STALL`] (the busy ones are blocked). Waking or
//! starting a worker per oneway call instead had the workers hand the GIL to each other
//! for every call: with THREADPOOL_SIZE 200, a flood of oneway calls started ~140 threads
//! and ran at about 60% of the one-worker rate.

use pyo3::prelude::*;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One unit of Python work; it runs with the GIL held.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// How long queued oneway jobs wait for the busy workers before an idle (or new) worker
/// takes one: a worker blocked in a long call holds up the calls queued behind it for
/// about this long, as each further blocked call also does.
const STALL: Duration = Duration::from_millis(1);

struct State {
    /// Jobs someone waits for (a reply, an attribute value): the next free worker.
    queue: VecDeque<Job>,
    /// Fire-and-forget jobs, left to a busy worker unless the pool stalls.
    oneway: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Workers running a job.
    busy: usize,
    /// Idle workers waiting with a deadline, watching queued oneway jobs for a stall.
    watchers: usize,
    /// When a worker last started a job.
    last_start: Instant,
    /// A worker was woken (or started) for the oneway queue and has not looked at it
    /// yet: further oneway jobs need no wake of their own.
    oneway_wake: bool,
    closed: bool,
}

impl State {
    fn stalled(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_start) >= STALL
    }

    fn start(&mut self, job: Job, now: Instant) -> Job {
        self.busy += 1;
        self.last_start = now;
        job
    }

    /// The next job for a worker that has just finished one: anything queued.
    fn next_for_busy(&mut self, now: Instant) -> Option<Job> {
        let job = self.queue.pop_front().or_else(|| self.oneway.pop_front())?;
        Some(self.start(job, now))
    }

    /// The next job for an idle worker: a waiting job, or a oneway job when no worker is
    /// busy or the busy ones have stalled.
    fn next_for_idle(&mut self, now: Instant) -> Option<Job> {
        let job = match self.queue.pop_front() {
            Some(job) => job,
            None if self.busy == 0 || self.stalled(now) => self.oneway.pop_front()?,
            None => return None,
        };
        Some(self.start(job, now))
    }

    /// Oneway jobs are queued with nobody watching them.
    fn unwatched(&self) -> bool {
        !self.oneway.is_empty() && self.watchers == 0
    }
}

/// Threads are started on demand, up to `max`, and live until [`Pool::close`].
pub(crate) struct Pool {
    state: Mutex<State>,
    wake: Condvar,
    max: usize,
    name: String,
}

impl Pool {
    /// A pool of at most `max` threads named `<name>-<n>` (Pyro4 names its workers
    /// `Pyro-Worker-<n>`).
    pub(crate) fn new(max: usize, name: &str) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                oneway: VecDeque::new(),
                threads: 0,
                idle: 0,
                busy: 0,
                watchers: 0,
                last_start: Instant::now(),
                oneway_wake: false,
                closed: false,
            }),
            wake: Condvar::new(),
            max: max.max(1),
            name: name.to_string(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a poisoned lock only means a panic in this
        // file's bookkeeping; the state is still consistent enough to go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a job; false if the pool is closed (the job is dropped).
    pub(crate) fn submit(self: &Arc<Self>, job: Job) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.queue.push_back(job);
        let spawn = st.queue.len() > st.idle;
        self.spawn_if(&mut st, spawn);
        drop(st);
        self.wake.notify_one();
        true
    }

    /// Queue a fire-and-forget job (a ONEWAY_THREADED call); false if the pool is closed.
    /// A busy worker runs it after its current job; an idle one is woken (or a worker
    /// started) when none is busy, when the pool has stalled, or to watch for a stall,
    /// unless one is already on its way.
    pub(crate) fn submit_oneway(self: &Arc<Self>, job: Job) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.oneway.push_back(job);
        if st.oneway_wake || (st.busy > 0 && st.watchers > 0 && !st.stalled(Instant::now())) {
            return true; // taken next by a busy worker, or the woken one sees it
        }
        let spawn = st.idle == 0;
        st.oneway_wake = self.spawn_if(&mut st, spawn);
        drop(st);
        self.wake.notify_one();
        true
    }

    /// Start a new worker if `spawn` (and the pool has room). Returns whether a worker
    /// will answer a wake: an idle one, or the one started.
    fn spawn_if(self: &Arc<Self>, st: &mut State, spawn: bool) -> bool {
        let mut coming = st.idle > 0;
        if spawn && st.threads < self.max {
            st.threads += 1;
            let n = st.threads;
            let pool = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{n}", self.name))
                .spawn(move || pool.worker());
            if spawned.is_err() {
                st.threads -= 1;
            } else {
                coming = true;
            }
        }
        coming
    }

    /// Run `f` on a pool thread and wait for its result, from a thread that is not a
    /// Python thread holding the GIL. On a tokio worker the wait is wrapped in
    /// `block_in_place`, so the runtime moves its other tasks elsewhere meanwhile.
    pub(crate) fn run_sync<T, F>(self: &Arc<Self>, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Python<'_>) -> T + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if !self.submit(Box::new(move |py| {
            let _ = tx.send(f(py));
        })) {
            return None;
        }
        let wait = move || rx.recv().ok();
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Stop taking jobs; idle threads exit, busy ones after their job. Queued jobs are
    /// dropped (their reply channels close, which the waiters see as a failure).
    pub(crate) fn close(&self) {
        let dropped: Vec<Job> = {
            let mut st = self.lock();
            st.closed = true;
            let mut jobs: Vec<Job> = st.queue.drain(..).collect();
            jobs.extend(st.oneway.drain(..));
            jobs
        };
        self.wake.notify_all();
        // Jobs own Python objects: drop them where decrefs are deferred safely.
        drop(dropped);
    }

    /// Wait, GIL released, for a job this idle worker may take; None once closed.
    fn next_job(self: &Arc<Self>) -> Option<Job> {
        let mut st = self.lock();
        loop {
            // This worker looks at the queues now: a pending oneway wake is answered.
            st.oneway_wake = false;
            let now = Instant::now();
            if let Some(job) = st.next_for_idle(now) {
                if st.unwatched() {
                    // More oneway jobs wait behind this one: someone must watch them.
                    let spawn = st.idle == 0;
                    st.oneway_wake = self.spawn_if(&mut st, spawn);
                    drop(st);
                    self.wake.notify_one();
                }
                return Some(job);
            }
            if st.closed {
                return None;
            }
            st.idle += 1;
            if st.oneway.is_empty() {
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            } else {
                // Oneway jobs left to a busy worker: take one if nothing starts in time.
                let left = (st.last_start + STALL).saturating_duration_since(now);
                st.watchers += 1;
                st = self
                    .wake
                    .wait_timeout(st, left.max(Duration::from_micros(50)))
                    .map(|(st, _)| st)
                    .unwrap_or_else(|p| p.into_inner().0);
                st.watchers -= 1;
            }
            st.idle -= 1;
        }
    }

    fn worker(self: Arc<Self>) {
        // Attach once: the thread keeps its Python thread state (and its
        // `threading.local` data) and only gives the GIL up while it waits.
        Python::attach(|py| {
            let mut next = py.detach(|| self.next_job());
            while let Some(job) = next {
                // A panic in a job must not take the worker down; the job's reply channel
                // is dropped with it, so its caller sees a failed call.
                if catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
                    eprintln!("pyro_rs: a daemon worker job panicked");
                }
                // While jobs are queued, take the next one without giving the GIL up in
                // between (a burst of oneway calls runs in one hold); wait with it released.
                let queued = {
                    let mut st = self.lock();
                    st.busy -= 1;
                    st.next_for_busy(Instant::now())
                };
                next = match queued {
                    Some(job) => Some(job),
                    None => py.detach(|| self.next_job()),
                };
            }
        });
        self.lock().threads -= 1;
    }
}
