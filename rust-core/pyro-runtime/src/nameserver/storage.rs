//! Name server storage: the [`Storage`] trait and the volatile [`MemoryStorage`]
//! (Pyro4's `naming.MemoryStorage`). The SQLite backend is in [`super::sql`].

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// One registration: the URI text as registered and its metadata tags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// URI text, stored as given (Pyro4 stores `str` URIs unnormalised).
    pub uri: String,
    /// Metadata tags, without duplicates, in the order they were given.
    pub metadata: Vec<String>,
}

impl Entry {
    /// An entry; duplicate tags are dropped (Pyro4 keeps a set).
    pub fn new(uri: impl Into<String>, metadata: impl IntoIterator<Item = String>) -> Entry {
        let mut tags: Vec<String> = Vec::new();
        for t in metadata {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Entry {
            uri: uri.into(),
            metadata: tags,
        }
    }
}

/// A storage failure, reported to clients as `NamingError` (Pyro4's SqlStorage wraps
/// every `sqlite3.DatabaseError` the same way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

/// Result of storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

/// Where the name server keeps its registrations (Pyro4's storage providers).
///
/// Methods are synchronous; a backend that blocks on IO says so with
/// [`Storage::is_blocking`] and the name server then calls it off the async workers.
/// Listing methods return entries in a stable order (registration order).
pub trait Storage: Send + Sync + 'static {
    /// True when calls may block on IO (the name server then uses `spawn_blocking`).
    fn is_blocking(&self) -> bool;
    /// Number of registrations.
    fn len(&self) -> StorageResult<usize>;
    /// True without registrations.
    fn is_empty(&self) -> StorageResult<bool> {
        Ok(self.len()? == 0)
    }
    /// The registration of `name`.
    fn get(&self, name: &str) -> StorageResult<Option<Entry>>;
    /// True when `name` is registered.
    fn contains(&self, name: &str) -> StorageResult<bool> {
        Ok(self.get(name)?.is_some())
    }
    /// Add or replace a registration. Must be durable when it returns (for persistent
    /// backends), because the client's acknowledgement follows.
    fn set(&self, name: &str, entry: Entry) -> StorageResult<()>;
    /// Remove the given names (unknown ones are skipped).
    fn remove_items(&self, names: &[String]) -> StorageResult<()>;
    /// Every registration.
    fn everything(&self) -> StorageResult<Vec<(String, Entry)>>;
    /// Registrations whose name matches `prefix`, or None to let the name server filter
    /// [`Storage::everything`] with `str.startswith` (Pyro4's `optimized_prefix_list`).
    fn prefix_list(&self, prefix: &str) -> StorageResult<Option<Vec<(String, Entry)>>> {
        let _ = prefix;
        Ok(None)
    }
    /// Registrations carrying all (`all == true`) or any of `tags`, or None to let the
    /// name server filter (Pyro4's `optimized_metadata_search`).
    fn metadata_search(
        &self,
        tags: &[String],
        all: bool,
    ) -> StorageResult<Option<Vec<(String, Entry)>>> {
        let _ = (tags, all);
        Ok(None)
    }
    /// Release resources (Pyro4's `close()`).
    fn close(&self) {}
}

/// Insertion-ordered map (Python's dict): replacing a name keeps its position.
#[derive(Debug, Default)]
struct Ordered {
    next: u64,
    order: BTreeMap<u64, String>,
    entries: HashMap<String, (u64, Entry)>,
}

/// Volatile in-memory storage: Pyro4's default `MemoryStorage` (a dict name -> (uri,
/// frozenset of tags)). Stopping the name server forgets everything.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    map: RwLock<Ordered>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

fn poisoned() -> StorageError {
    StorageError("memory storage lock poisoned".into())
}

impl Storage for MemoryStorage {
    fn is_blocking(&self) -> bool {
        false
    }

    fn len(&self) -> StorageResult<usize> {
        Ok(self.map.read().map_err(|_| poisoned())?.entries.len())
    }

    fn get(&self, name: &str) -> StorageResult<Option<Entry>> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map.entries.get(name).map(|(_, e)| e.clone()))
    }

    fn set(&self, name: &str, entry: Entry) -> StorageResult<()> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        if let Some(slot) = map.entries.get_mut(name) {
            slot.1 = entry;
            return Ok(());
        }
        let seq = map.next;
        map.next += 1;
        map.order.insert(seq, name.to_string());
        map.entries.insert(name.to_string(), (seq, entry));
        Ok(())
    }

    fn remove_items(&self, names: &[String]) -> StorageResult<()> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for name in names {
            if let Some((seq, _)) = map.entries.remove(name) {
                map.order.remove(&seq);
            }
        }
        Ok(())
    }

    fn everything(&self) -> StorageResult<Vec<(String, Entry)>> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map
            .order
            .values()
            .filter_map(|n| map.entries.get(n).map(|(_, e)| (n.clone(), e.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn memory_keeps_insertion_order_like_a_dict() {
        let s = MemoryStorage::new();
        s.set("b", Entry::new("PYRO:b@h:1", tags(&["x"]))).unwrap();
        s.set("a", Entry::new("PYRO:a@h:1", Vec::new())).unwrap();
        s.set("c", Entry::new("PYRO:c@h:1", Vec::new())).unwrap();
        // replacing keeps the position, as assigning an existing dict key does
        s.set("b", Entry::new("PYRO:b2@h:1", Vec::new())).unwrap();
        let names: Vec<String> = s.everything().unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(names, tags(&["b", "a", "c"]));
        assert_eq!(s.get("b").unwrap().unwrap().uri, "PYRO:b2@h:1");
        s.remove_items(&tags(&["a", "zz"])).unwrap();
        assert_eq!(s.len().unwrap(), 2);
        assert!(!s.contains("a").unwrap());
        s.set("a", Entry::new("PYRO:a@h:1", Vec::new())).unwrap();
        let names: Vec<String> = s.everything().unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(names, tags(&["b", "c", "a"]));
    }

    #[test]
    fn entry_drops_duplicate_tags() {
        let e = Entry::new("u", tags(&["a", "b", "a"]));
        assert_eq!(e.metadata, tags(&["a", "b"]));
    }
}
