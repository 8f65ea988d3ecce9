//! The `Pyro.NameServer` object: Pyro4's `naming.NameServer` methods with their exact
//! argument and reply shapes, as plain Rust over a [`Storage`], plus the [`Exposed`]
//! object a daemon serves.

use super::storage::{Entry, Storage, StorageError};
use crate::daemon::{Args, Exposed, Fault};
use pyro_codec::{envelope, Dict, Value};
use pyro_wire::{Uri, NAMESERVER_NAME};
use regex::{Regex, RegexBuilder};
use std::sync::{Arc, Mutex};

/// Metadata the name server registers itself with (Pyro4's `type_meta` of its class).
pub const NAMESERVER_METADATA: &str = "class:Pyro4.naming.NameServer";

/// The methods Pyro4's `NameServer` exposes (the whole class is `@expose`d).
pub const NAMESERVER_METHODS: &[&str] = &[
    "count",
    "lookup",
    "register",
    "set_metadata",
    "remove",
    "list",
    "ping",
];

/// Largest compiled regex accepted from a client (the regex crate's unit: bytes of
/// compiled program). Keeps a hostile pattern from eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn naming_error(message: impl Into<String>) -> Fault {
    Fault::pyro("NamingError", message)
}

impl From<StorageError> for Fault {
    fn from(e: StorageError) -> Fault {
        naming_error(e.0)
    }
}

/// Python's `re.compile(pattern)` then `.match(name)`: the regex crate's syntax (no
/// look-around or back-references: such patterns are "invalid regex"), and a match
/// must start at position 0 (`re.match` anchors at the start only).
#[derive(Debug, Clone)]
pub struct NameRegex(Regex);

impl NameRegex {
    /// Compile, or `NamingError("invalid regex: ...")` as Pyro4 reports `re.error`.
    pub fn new(pattern: &str) -> Result<NameRegex, Fault> {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(NameRegex)
            .map_err(|e| {
                // The regex crate renders syntax errors over several lines (pattern,
                // caret, "error: ..."); Python's re.error text is one line.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ");
                naming_error(format!("invalid regex: {reason}"))
            })
    }

    /// `re.match`: true when a match starts at the beginning. Leftmost-first search
    /// returns the match with the smallest start, so a match at 0 exists iff the
    /// first one found starts there (no pattern rewriting needed).
    pub fn matches(&self, name: &str) -> bool {
        self.0.find(name).is_some_and(|m| m.start() == 0)
    }
}

/// Metadata given by a client: Pyro4 requires "a non-str iterable" and makes a set of
/// it. Python would iterate any iterable; here the items must be str (what Pyro4
/// documents and what its sql storage can hold), a dict gives its keys.
fn tags_of(value: &Value, what: &str) -> Result<Vec<String>, Fault> {
    let items: Vec<&Value> = match value {
        Value::Str(_) => {
            return Err(Fault::type_error(format!(
                "{what} should not be a str, but another iterable (set, list, etc)"
            )))
        }
        v if !v.is_truthy() => return Ok(Vec::new()),
        Value::List(v) | Value::Tuple(v) | Value::Set(v) => v.iter().collect(),
        Value::Dict(d) => d.iter().map(|(k, _)| k).collect(),
        other => {
            return Err(Fault::type_error(format!(
                "'{}' object is not iterable",
                other.type_name()
            )))
        }
    };
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(tag) = item.as_str() else {
            return Err(Fault::type_error(format!(
                "{what} items must be str, not {}",
                item.type_name()
            )));
        };
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    Ok(tags)
}

fn name_of(value: &Value) -> Result<&str, Fault> {
    value
        .as_str()
        .ok_or_else(|| Fault::type_error("name must be a str"))
}

/// The name server's logic (Pyro4's `NameServer`), independent of any daemon.
///
/// Mutations are serialised by a lock, as Pyro4's `RLock`, so `register(safe=True)`
/// checks and sets atomically. With a blocking storage every method blocks: call them
/// from `spawn_blocking` (the served object does).
pub struct NameServerCore {
    storage: Arc<dyn Storage>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for NameServerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameServerCore")
            .field("blocking", &self.storage.is_blocking())
            .finish()
    }
}

/// One `list()` result entry.
type Listing = Vec<(String, Entry)>;

impl NameServerCore {
    /// A name server over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> NameServerCore {
        NameServerCore {
            storage,
            lock: Mutex::new(()),
        }
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guard protects no data, so a poisoned lock is still usable.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `count()`: number of registrations, the name server's own included.
    pub fn count(&self) -> Result<usize, Fault> {
        Ok(self.storage.len()?)
    }

    /// `lookup(name)`: the registration, or `NamingError("unknown name: <name>")`.
    pub fn lookup_entry(&self, name: &str) -> Result<Entry, Fault> {
        self.storage
            .get(name)?
            .ok_or_else(|| naming_error(format!("unknown name: {name}")))
    }

    /// Register from Rust: the URI text is validated by parsing it, as Pyro4 does.
    pub fn register_entry(
        &self,
        name: &str,
        uri: &str,
        safe: bool,
        metadata: Vec<String>,
    ) -> Result<(), Fault> {
        Uri::parse(uri).map_err(|e| Fault::pyro("PyroError", e.to_string()))?;
        let _guard = self.locked();
        if safe && self.storage.contains(name)? {
            return Err(naming_error(format!("name already registered: {name}")));
        }
        self.storage.set(name, Entry::new(uri, metadata))?;
        Ok(())
    }

    /// Every registration, in order.
    pub fn everything(&self) -> Result<Listing, Fault> {
        Ok(self.storage.everything()?)
    }

    // ---- the remote methods, on wire values ----

    /// `lookup(name, return_metadata=False)` -> URI class dict, or `(URI, [tags])`.
    pub fn lookup(&self, name: &Value, return_metadata: &Value) -> Result<Value, Fault> {
        let Some(name) = name.as_str() else {
            // Pyro4 fails building its message: "unknown name: " + name.
            return Err(Fault::type_error(format!(
                "can only concatenate str (not \"{}\") to str",
                name.type_name()
            )));
        };
        let entry = self.lookup_entry(name)?;
        let uri = Uri::parse(&entry.uri).map_err(|e| Fault::pyro("PyroError", e.to_string()))?;
        let uri = envelope::uri_to_value(&uri);
        if return_metadata.is_truthy() {
            Ok(Value::Tuple(vec![uri, tag_list(entry.metadata)]))
        } else {
            Ok(uri)
        }
    }

    /// `register(name, uri, safe=False, metadata=None)`.
    pub fn register(
        &self,
        name: &Value,
        uri: &Value,
        safe: &Value,
        metadata: &Value,
    ) -> Result<(), Fault> {
        let uri = match uri {
            Value::Str(s) => {
                // core.URI(uri) validates; the text itself is stored.
                Uri::parse(s).map_err(|e| Fault::pyro("PyroError", e.to_string()))?;
                s.clone()
            }
            // A URI object arrives as its class dict; stored as `uri.asString()`. Any
            // other object (a Proxy, ...) is refused as in Pyro4.
            Value::Dict(_) => match envelope::uri_from_value(uri) {
                Some(u) => u.to_string(),
                None => return Err(Fault::type_error("only URIs or strings can be registered")),
            },
            _ => return Err(Fault::type_error("only URIs or strings can be registered")),
        };
        let name = name_of(name)?;
        let tags = tags_of(metadata, "metadata")?;
        let _guard = self.locked();
        if safe.is_truthy() && self.storage.contains(name)? {
            return Err(naming_error(format!("name already registered: {name}")));
        }
        self.storage.set(name, Entry::new(uri, tags))?;
        Ok(())
    }

    /// `set_metadata(name, metadata)`: replace the tags of an existing registration.
    pub fn set_metadata(&self, name: &Value, metadata: &Value) -> Result<(), Fault> {
        let name = name_of(name)?;
        let tags = tags_of(metadata, "metadata")?;
        let _guard = self.locked();
        let entry = self
            .storage
            .get(name)?
            .ok_or_else(|| naming_error(format!("unknown name: {name}")))?;
        self.storage.set(name, Entry::new(entry.uri, tags))?;
        Ok(())
    }

    /// `remove(name=None, prefix=None, regex=None)` -> number removed. The name server's
    /// own registration is never removed.
    pub fn remove(&self, name: &Value, prefix: &Value, regex: &Value) -> Result<usize, Fault> {
        if let Some(n) = name.as_str() {
            if !n.is_empty() && n != NAMESERVER_NAME {
                let _guard = self.locked();
                if self.storage.contains(n)? {
                    self.storage.remove_items(&[n.to_string()])?;
                    return Ok(1);
                }
            }
        }
        let selected = if prefix.is_truthy() {
            self.select_prefix(prefix)?
        } else if regex.is_truthy() {
            self.select_regex(regex)?
        } else {
            return Ok(0);
        };
        let names: Vec<String> = selected
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n != NAMESERVER_NAME)
            .collect();
        let _guard = self.locked();
        self.storage.remove_items(&names)?;
        Ok(names.len())
    }

    fn select_prefix(&self, prefix: &Value) -> Result<Listing, Fault> {
        let Some(prefix) = prefix.as_str() else {
            return Err(Fault::type_error(format!(
                "startswith first arg must be str or a tuple of str, not {}",
                prefix.type_name()
            )));
        };
        if let Some(found) = self.storage.prefix_list(prefix)? {
            return Ok(found);
        }
        let mut all = self.storage.everything()?;
        all.retain(|(n, _)| n.starts_with(prefix));
        Ok(all)
    }

    fn select_regex(&self, regex: &Value) -> Result<Listing, Fault> {
        let Some(pattern) = regex.as_str() else {
            return Err(Fault::type_error(
                "first argument must be string or compiled pattern",
            ));
        };
        let re = NameRegex::new(pattern)?;
        let mut all = self.storage.everything()?;
        all.retain(|(n, _)| re.matches(n));
        Ok(all)
    }

    fn select_metadata(&self, value: &Value, all: bool) -> Result<Listing, Fault> {
        let what = if all { "metadata_all" } else { "metadata_any" };
        let tags = tags_of(value, what)?;
        if let Some(found) = self.storage.metadata_search(&tags, all)? {
            return Ok(found);
        }
        let mut entries = self.storage.everything()?;
        entries.retain(|(_, e)| {
            if all {
                tags.iter().all(|t| e.metadata.contains(t))
            } else {
                tags.iter().any(|t| e.metadata.contains(t))
            }
        });
        Ok(entries)
    }

    /// `list(prefix=None, regex=None, metadata_all=None, metadata_any=None,
    /// return_metadata=False)` -> `{name: uri}` or `{name: (uri, [tags])}`.
    pub fn list(
        &self,
        prefix: &Value,
        regex: &Value,
        metadata_all: &Value,
        metadata_any: &Value,
        return_metadata: &Value,
    ) -> Result<Value, Fault> {
        let filters = [prefix, regex, metadata_all, metadata_any];
        if filters.iter().filter(|v| !matches!(v, Value::None)).count() > 1 {
            return Err(Fault::value_error(
                "you can only filter on one thing at a time",
            ));
        }
        // Pyro4 tests truthiness: an empty prefix or tag set means "everything".
        let selected = if prefix.is_truthy() {
            self.select_prefix(prefix)?
        } else if regex.is_truthy() {
            self.select_regex(regex)?
        } else if metadata_all.is_truthy() {
            self.select_metadata(metadata_all, true)?
        } else if metadata_any.is_truthy() {
            self.select_metadata(metadata_any, false)?
        } else {
            self.storage.everything()?
        };
        let with_meta = return_metadata.is_truthy();
        let pairs = selected
            .into_iter()
            .map(|(name, entry)| {
                let v = if with_meta {
                    Value::Tuple(vec![Value::Str(entry.uri), tag_list(entry.metadata)])
                } else {
                    Value::Str(entry.uri)
                };
                (Value::Str(name), v)
            })
            .collect();
        Ok(Value::Dict(Dict::from_unique_pairs(pairs)))
    }

    /// Dispatch one remote call by method name (arguments bound as Pyro4's signatures).
    pub fn invoke(&self, method: &str, args: Args) -> Result<Value, Fault> {
        match method {
            "ping" => {
                args.bind(&[])?;
                Ok(Value::None)
            }
            "count" => {
                args.bind(&[])?;
                let n = self.count()?;
                Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            "lookup" => {
                let a = args.bind_optional(&["name", "return_metadata"], 1)?;
                self.lookup(&a[0], &a[1])
            }
            "register" => {
                let a = args.bind_optional(&["name", "uri", "safe", "metadata"], 2)?;
                self.register(&a[0], &a[1], &a[2], &a[3])
                    .map(|()| Value::None)
            }
            "set_metadata" => {
                let a = args.bind(&["name", "metadata"])?;
                self.set_metadata(&a[0], &a[1]).map(|()| Value::None)
            }
            "remove" => {
                let a = args.bind_optional(&["name", "prefix", "regex"], 0)?;
                let n = self.remove(&a[0], &a[1], &a[2])?;
                Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            "list" => {
                let a = args.bind_optional(
                    &[
                        "prefix",
                        "regex",
                        "metadata_all",
                        "metadata_any",
                        "return_metadata",
                    ],
                    0,
                )?;
                self.list(&a[0], &a[1], &a[2], &a[3], &a[4])
            }
            other => Err(Fault::attribute_error(format!(
                "'NameServer' object has no attribute '{other}'"
            ))),
        }
    }
}

/// Pyro4 sends tags as a list (`fix_set`: no sets for Python 2's serpent).
fn tag_list(tags: Vec<String>) -> Value {
    Value::List(tags.into_iter().map(Value::Str).collect())
}

/// The `Pyro.NameServer` object for a daemon. Methods run inline for a non-blocking
/// storage and on tokio's blocking pool for one that does disk IO (SQLite), so a slow
/// fsync never stalls the connection tasks.
pub fn nameserver_object(core: Arc<NameServerCore>) -> Exposed<NameServerCore> {
    let blocking = core.storage().is_blocking();
    let mut obj = Exposed::from_arc("NameServer", core);
    for &method in NAMESERVER_METHODS {
        obj = if blocking {
            obj.async_method(
                method,
                move |core: Arc<NameServerCore>, args: Args| async move {
                    tokio::task::spawn_blocking(move || core.invoke(method, args))
                        .await
                        .map_err(|e| {
                            Fault::runtime_error(format!("name server task failed: {e}"))
                        })?
                },
            )
        } else {
            obj.method(method, move |core: &NameServerCore, args: Args| {
                core.invoke(method, args)
            })
        };
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::super::storage::MemoryStorage;
    use super::*;

    fn core() -> NameServerCore {
        let c = NameServerCore::new(Arc::new(MemoryStorage::new()));
        c.register_entry(
            NAMESERVER_NAME,
            "PYRO:Pyro.NameServer@localhost:9090",
            false,
            vec![NAMESERVER_METADATA.into()],
        )
        .unwrap();
        c
    }

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    fn set(items: &[&str]) -> Value {
        Value::Set(items.iter().map(|i| s(i)).collect())
    }

    fn names(v: &Value) -> Vec<String> {
        v.as_dict()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_string())
            .collect()
    }

    const N: Value = Value::None;

    #[test]
    fn register_lookup_and_shapes() {
        let c = core();
        c.register(&s("a.x"), &s("PYRO:obj@host:1"), &N, &set(&["t1", "t2"]))
            .unwrap();
        let uri = c.lookup(&s("a.x"), &N).unwrap();
        assert_eq!(
            envelope::uri_from_value(&uri).unwrap().to_string(),
            "PYRO:obj@host:1"
        );
        let Value::Tuple(t) = c.lookup(&s("a.x"), &Value::Bool(true)).unwrap() else {
            panic!("tuple expected")
        };
        assert_eq!(t[1], Value::List(vec![s("t1"), s("t2")]));
        let err = c.lookup(&s("nope"), &N).unwrap_err();
        assert_eq!(err.class_name, "Pyro4.errors.NamingError");
        assert_eq!(err.message(), "unknown name: nope");
        // a URI class dict is accepted and stored as its text
        let as_dict = envelope::uri_to_value(&Uri::parse("PYRO:o2@h:2").unwrap());
        c.register(&s("b"), &as_dict, &N, &N).unwrap();
        assert_eq!(c.lookup_entry("b").unwrap().uri, "PYRO:o2@h:2");
        assert_eq!(c.count().unwrap(), 3);
    }

    #[test]
    fn register_errors() {
        let c = core();
        let e = c.register(&s("x"), &Value::Int(1), &N, &N).unwrap_err();
        assert_eq!(e.class_name, "builtins.TypeError");
        let e = c
            .register(&Value::Int(1), &s("PYRO:o@h:1"), &N, &N)
            .unwrap_err();
        assert_eq!(e.message(), "name must be a str");
        let e = c.register(&s("x"), &s("nonsense"), &N, &N).unwrap_err();
        assert_eq!(e.class_name, "Pyro4.errors.PyroError");
        let e = c
            .register(&s("x"), &s("PYRO:o@h:1"), &N, &s("tag"))
            .unwrap_err();
        assert!(e.message().starts_with("metadata should not be a str"));
        c.register(&s("x"), &s("PYRO:o@h:1"), &N, &N).unwrap();
        let e = c
            .register(&s("x"), &s("PYRO:o@h:2"), &Value::Bool(true), &N)
            .unwrap_err();
        assert_eq!(e.message(), "name already registered: x");
        c.register(&s("x"), &s("PYRO:o@h:2"), &Value::Bool(false), &N)
            .unwrap();
        assert_eq!(c.lookup_entry("x").unwrap().uri, "PYRO:o@h:2");
    }

    #[test]
    fn list_filters() {
        let c = core();
        c.register(&s("a.1"), &s("PYRO:o@h:1"), &N, &set(&["x", "y"]))
            .unwrap();
        c.register(&s("a.2"), &s("PYRO:o@h:2"), &N, &set(&["y"]))
            .unwrap();
        c.register(&s("ba.3"), &s("PYRO:o@h:3"), &N, &N).unwrap();
        assert_eq!(
            names(&c.list(&s("a."), &N, &N, &N, &N).unwrap()),
            ["a.1", "a.2"]
        );
        // re.match anchors at the start only
        assert_eq!(
            names(&c.list(&N, &s("a"), &N, &N, &N).unwrap()),
            ["a.1", "a.2"]
        );
        assert_eq!(names(&c.list(&N, &s(".*3"), &N, &N, &N).unwrap()), ["ba.3"]);
        assert_eq!(
            names(&c.list(&N, &N, &set(&["x", "y"]), &N, &N).unwrap()),
            ["a.1"]
        );
        assert_eq!(
            names(
                &c.list(
                    &N,
                    &N,
                    &N,
                    &set(&["y", "class:Pyro4.naming.NameServer"]),
                    &N
                )
                .unwrap()
            ),
            [NAMESERVER_NAME, "a.1", "a.2"]
        );
        // an empty tag set is falsy: everything
        assert_eq!(names(&c.list(&N, &N, &set(&[]), &N, &N).unwrap()).len(), 4);
        let e = c.list(&s("a"), &s("b"), &N, &N, &N).unwrap_err();
        assert_eq!(e.class_name, "builtins.ValueError");
        let e = c.list(&N, &s("(unclosed"), &N, &N, &N).unwrap_err();
        assert!(e.message().starts_with("invalid regex: "), "{e}");
        assert_eq!(e.class_name, "Pyro4.errors.NamingError");
        let e = c.list(&N, &N, &s("x"), &N, &N).unwrap_err();
        assert_eq!(e.class_name, "builtins.TypeError");
        let v = c.list(&s("a.2"), &N, &N, &N, &Value::Bool(true)).unwrap();
        assert_eq!(
            v.as_dict().unwrap().get_str("a.2"),
            Some(&Value::Tuple(vec![
                s("PYRO:o@h:2"),
                Value::List(vec![s("y")])
            ]))
        );
    }

    #[test]
    fn remove_never_removes_the_name_server() {
        let c = core();
        c.register(&s("a.1"), &s("PYRO:o@h:1"), &N, &N).unwrap();
        c.register(&s("a.2"), &s("PYRO:o@h:2"), &N, &N).unwrap();
        assert_eq!(c.remove(&s(NAMESERVER_NAME), &N, &N).unwrap(), 0);
        assert_eq!(c.remove(&s("a.1"), &N, &N).unwrap(), 1);
        assert_eq!(c.remove(&s("a.1"), &N, &N).unwrap(), 0);
        assert_eq!(c.remove(&N, &N, &s(".*")).unwrap(), 1);
        assert_eq!(c.count().unwrap(), 1);
        c.set_metadata(&s(NAMESERVER_NAME), &set(&["q"])).unwrap();
        assert_eq!(c.lookup_entry(NAMESERVER_NAME).unwrap().metadata, ["q"]);
        let e = c.set_metadata(&s("zz"), &N).unwrap_err();
        assert_eq!(e.message(), "unknown name: zz");
    }

    #[test]
    fn regex_is_python_match() {
        let r = NameRegex::new("b").unwrap();
        assert!(!r.matches("ab"));
        assert!(r.matches("bc"));
        assert!(NameRegex::new("x*").unwrap().matches("abc"));
        assert!(NameRegex::new("a|b").unwrap().matches("b"));
    }
}
