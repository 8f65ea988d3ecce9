//! The bounded pool of threads that run Python for a daemon (the granian `blocking.rs`
//! habit): the tokio workers only move bytes; every Python call is a job handed to one
//! of these threads, which attach to the interpreter once and release the GIL while
//! they wait for work. Pyro4's thread server has THREADPOOL_SIZE workers; its
//! multiplex server runs everything on one thread, which is a pool of size one here.

use pyo3::prelude::*;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// One unit of Python work; it runs with the GIL held.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    closed: bool,
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
            state: Mutex::new(State::default()),
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
        if st.queue.len() > st.idle && st.threads < self.max {
            st.threads += 1;
            let n = st.threads;
            let pool = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{n}", self.name))
                .spawn(move || pool.worker());
            if spawned.is_err() {
                st.threads -= 1;
            }
        }
        drop(st);
        self.wake.notify_one();
        true
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
            st.queue.drain(..).collect()
        };
        self.wake.notify_all();
        // Jobs own Python objects: drop them where decrefs are deferred safely.
        drop(dropped);
    }

    fn next_job(&self) -> Option<Job> {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                return Some(job);
            }
            if st.closed {
                return None;
            }
            st.idle += 1;
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            st.idle -= 1;
        }
    }

    fn worker(self: Arc<Self>) {
        // Attach once: the thread keeps its Python thread state (and its
        // `threading.local` data) and only gives the GIL up while it waits.
        Python::attach(|py| loop {
            // While jobs are queued, take the next one without giving the GIL up in
            // between (a burst of oneway calls runs in one hold); wait with it released.
            let queued = self.lock().queue.pop_front();
            let job = match queued {
                Some(job) => job,
                None => match py.detach(|| self.next_job()) {
                    Some(job) => job,
                    None => break,
                },
            };
            // A panic in a job must not take the worker down; the job's reply channel
            // is dropped with it, so its caller sees a failed call.
            if catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
                eprintln!("pyro_rs: a daemon worker job panicked");
            }
        });
        self.lock().threads -= 1;
    }
}
