//! Remote iterators (Pyro4's `Daemon.streaming_responses`): stream id -> (owning
//! connection, creation time, linger start, iterator).

use super::dispatch::{Fault, ItemIter};
use pyro_codec::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Entry {
    /// Owning connection; None while orphaned (its client disconnected, lingering).
    conn: Option<u64>,
    created: Instant,
    /// When the owner disconnected (Pyro4's linger timestamp).
    orphaned_at: Option<Instant>,
    /// Own lock per iterator, so the table lock is never held while an item is produced.
    iter: Arc<Mutex<ItemIter>>,
}

/// The daemon's open item streams.
#[derive(Default)]
pub(crate) struct Streams {
    table: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("open", &self.len())
            .finish()
    }
}

impl Streams {
    /// Store an iterator for `conn`; returns its id (`str(uuid4())`).
    pub(crate) fn open(&self, conn: u64, iter: ItemIter) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Entry {
            conn: Some(conn),
            created: Instant::now(),
            orphaned_at: None,
            iter: Arc::new(Mutex::new(iter)),
        };
        if let Ok(mut t) = self.table.lock() {
            t.insert(id.clone(), entry);
        }
        id
    }

    /// Number of open streams.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// `DaemonObject.get_next_stream_item`: unknown id -> `PyroError("item stream
    /// terminated")`; an orphaned stream is adopted by the asking connection; the end of
    /// the iterator (StopIteration) or any error drops the stream.
    pub(crate) fn next_item(&self, id: &str, conn: u64) -> Result<Value, Fault> {
        let iter = {
            let Ok(mut t) = self.table.lock() else {
                return Err(terminated());
            };
            let Some(entry) = t.get_mut(id) else {
                return Err(terminated());
            };
            if entry.conn.is_none() {
                entry.conn = Some(conn);
                entry.orphaned_at = None;
            }
            entry.iter.clone()
        };
        let next = match iter.lock() {
            Ok(mut it) => it.next(),
            // A panicking iterator poisoned its lock: treat it as ended with an error.
            Err(_) => Some(Err(Fault::runtime_error("item stream failed"))),
        };
        match next {
            Some(Ok(v)) => Ok(v),
            Some(Err(f)) => {
                self.close(id);
                Err(f)
            }
            None => {
                self.close(id);
                Err(Fault::stop_iteration())
            }
        }
    }

    /// `close_stream`: drop it (unknown ids are ignored).
    pub(crate) fn close(&self, id: &str) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(id);
        }
    }

    /// A client disconnected (Pyro4's `_clientDisconnect`): with a linger time its streams
    /// are kept, orphaned, for another connection to adopt; without, dropped at once.
    pub(crate) fn disconnect(&self, conn: u64, linger: Option<Duration>) {
        let Ok(mut t) = self.table.lock() else { return };
        if linger.is_some() {
            let now = Instant::now();
            for e in t.values_mut().filter(|e| e.conn == Some(conn)) {
                e.conn = None;
                e.orphaned_at = Some(now);
            }
        } else {
            t.retain(|_, e| e.conn != Some(conn));
        }
    }

    /// Housekeeping (Pyro4's `_housekeeping`): drop streams older than `lifetime` and
    /// orphans that lingered longer than `linger`. Dropped iterators are released after
    /// the lock is let go.
    pub(crate) fn expire(&self, lifetime: Option<Duration>, linger: Option<Duration>) {
        let now = Instant::now();
        let mut dropped = Vec::new();
        if let Ok(mut t) = self.table.lock() {
            let dead: Vec<String> = t
                .iter()
                .filter(|(_, e)| {
                    let too_old = lifetime.is_some_and(|l| now.duration_since(e.created) > l);
                    let lingered = match (linger, e.orphaned_at) {
                        (Some(l), Some(at)) => now.duration_since(at) > l,
                        _ => false,
                    };
                    too_old || lingered
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                if let Some(e) = t.remove(&k) {
                    dropped.push(e);
                }
            }
        }
        drop(dropped);
    }
}

fn terminated() -> Fault {
    Fault::pyro("PyroError", "item stream terminated")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ItemIter {
        Box::new((1..=3).map(|i| Ok(Value::Int(i))))
    }

    #[test]
    fn items_then_stop_iteration_then_terminated() {
        let s = Streams::default();
        let id = s.open(1, three());
        assert_eq!(id.len(), 36);
        for i in 1..=3 {
            assert_eq!(s.next_item(&id, 1), Ok(Value::Int(i)));
        }
        assert_eq!(
            s.next_item(&id, 1).unwrap_err().class_name,
            "builtins.StopIteration"
        );
        assert_eq!(
            s.next_item(&id, 1).unwrap_err().message(),
            "item stream terminated"
        );
    }

    #[test]
    fn linger_keeps_and_adopts_then_expires() {
        let s = Streams::default();
        let id = s.open(1, three());
        s.disconnect(1, Some(Duration::from_secs(30)));
        s.expire(None, Some(Duration::from_secs(30)));
        assert_eq!(s.next_item(&id, 2), Ok(Value::Int(1)));
        let other = s.open(2, three());
        s.disconnect(2, None);
        assert_eq!(s.len(), 0, "no linger drops both streams of connection 2");
        let id = s.open(3, three());
        s.disconnect(3, Some(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(5));
        s.expire(None, Some(Duration::ZERO));
        assert!(s.next_item(&id, 3).is_err());
        let _ = other;
    }

    #[test]
    fn lifetime_expires() {
        let s = Streams::default();
        let id = s.open(1, three());
        std::thread::sleep(Duration::from_millis(5));
        s.expire(Some(Duration::from_millis(1)), None);
        assert!(s.next_item(&id, 1).is_err());
    }
}
