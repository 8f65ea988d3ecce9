//! SQLite storage (Pyro4's `naming_storage.SqlStorage`, option `-s sql:FILE`), with
//! Pyro4's schema so either name server can open the other's file.
//!
//! Durability: the file is put in WAL journal mode with `synchronous=FULL`, so every
//! commit fsyncs the write-ahead log before [`Storage::set`] returns, and the name
//! server only acknowledges a registration after that. NORMAL would also survive a
//! killed process (the WAL is in the OS page cache) but may lose the latest commits on
//! power loss or an OS crash; FULL costs one fsync per mutation, which is cheap for
//! the rate at which names get registered. WAL instead of Pyro4's default rollback
//! journal: one fsync per commit instead of several, and lookups are not blocked by a
//! writer in another process. Python's sqlite3 (and so Pyro4's own SqlStorage) reads
//! WAL databases transparently.

use super::storage::{Entry, Storage, StorageError, StorageResult};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a statement waits for a lock held by another process using the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Registrations in an SQLite file: tables `pyro_names(id, name, uri)` and
/// `pyro_metadata(object, metadata)` with a foreign key, as Pyro4 4.82 creates them.
///
/// One connection, used under a mutex: calls block on disk IO, so the name server runs
/// them with `spawn_blocking` ([`Storage::is_blocking`] is true).
#[derive(Debug)]
pub struct SqlStorage {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

fn sql_err(op: &str) -> impl Fn(rusqlite::Error) -> StorageError + '_ {
    move |e| StorageError(format!("sqlite error in {op}: {e}"))
}

fn create_schema(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE pyro_names
            (
                id integer PRIMARY KEY,
                name nvarchar NOT NULL UNIQUE,
                uri nvarchar NOT NULL
            );
         CREATE TABLE pyro_metadata
            (
                object integer NOT NULL,
                metadata nvarchar NOT NULL,
                FOREIGN KEY(object) REFERENCES pyro_names(id)
            );",
    )
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1)",
        params![table],
        |r| r.get(0),
    )
}

impl SqlStorage {
    /// Open (or create) the database file. `:memory:` is refused as in Pyro4 (use the
    /// memory storage instead). A database with Pyro4's older schema (no metadata table)
    /// is migrated the way Pyro4 does it.
    pub fn open(path: impl AsRef<Path>) -> StorageResult<SqlStorage> {
        let path = path.as_ref();
        if path.as_os_str() == ":memory:" {
            return Err(StorageError(
                "We don't support the sqlite :memory: database type. Just use the default volatile in-memory store.".into(),
            ));
        }
        let err = sql_err("init");
        let mut conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(&err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("sqlite storage: journal mode is {mode}, not WAL");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        let tx = conn.transaction().map_err(&err)?;
        if !table_exists(&tx, "pyro_names").map_err(&err)? {
            create_schema(&tx).map_err(&err)?;
        } else if !table_exists(&tx, "pyro_metadata").map_err(&err)? {
            // Pyro4 before 4.40 had only the names table: keep the names, add metadata.
            tx.execute_batch("ALTER TABLE pyro_names RENAME TO pyro_names_old")
                .map_err(&err)?;
            create_schema(&tx).map_err(&err)?;
            tx.execute_batch(
                "INSERT INTO pyro_names(name, uri) SELECT name, uri FROM pyro_names_old;
                 DROP TABLE pyro_names_old;",
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(SqlStorage {
            path: path.to_path_buf(),
            conn: Mutex::new(Some(conn)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StorageError(format!("sqlite error in {op}: connection lock poisoned")))?;
        let conn = guard
            .as_mut()
            .ok_or_else(|| StorageError(format!("sqlite error in {op}: storage is closed")))?;
        f(conn).map_err(sql_err(op))
    }
}

/// Metadata of every object, in insertion order.
fn all_metadata(conn: &Connection) -> rusqlite::Result<HashMap<i64, Vec<String>>> {
    let mut stmt =
        conn.prepare_cached("SELECT object, metadata FROM pyro_metadata ORDER BY rowid")?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, tag) = row?;
        out.entry(id).or_default().push(tag);
    }
    Ok(out)
}

/// Run a `SELECT id, name, uri ...` query and attach each row's metadata.
fn entries(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<(String, Entry)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows: Vec<(i64, String, String)> = stmt
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut meta = if rows.is_empty() {
        HashMap::new()
    } else {
        all_metadata(conn)?
    };
    Ok(rows
        .into_iter()
        .map(|(id, name, uri)| {
            let tags = meta.remove(&id).unwrap_or_default();
            (name, Entry::new(uri, tags))
        })
        .collect())
}

fn delete_name(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<()> {
    let id: Option<i64> = tx
        .query_row(
            "SELECT id FROM pyro_names WHERE name=?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        tx.execute("DELETE FROM pyro_metadata WHERE object=?1", params![id])?;
        tx.execute("DELETE FROM pyro_names WHERE id=?1", params![id])?;
    }
    Ok(())
}

impl Storage for SqlStorage {
    fn is_blocking(&self) -> bool {
        true
    }

    fn len(&self) -> StorageResult<usize> {
        self.with_conn("len", |c| {
            c.query_row("SELECT count(*) FROM pyro_names", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| usize::try_from(n).unwrap_or(0))
    }

    fn get(&self, name: &str) -> StorageResult<Option<Entry>> {
        self.with_conn("getitem", |c| {
            let row: Option<(i64, String)> = c
                .query_row(
                    "SELECT id, uri FROM pyro_names WHERE name=?1",
                    params![name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, uri)) = row else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT metadata FROM pyro_metadata WHERE object=?1 ORDER BY rowid",
            )?;
            let tags: Vec<String> = stmt
                .query_map(params![id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(Entry::new(uri, tags)))
        })
    }

    fn contains(&self, name: &str) -> StorageResult<bool> {
        self.with_conn("contains", |c| {
            c.query_row(
                "SELECT EXISTS(SELECT 1 FROM pyro_names WHERE name=?1 LIMIT 1)",
                params![name],
                |r| r.get(0),
            )
        })
    }

    fn set(&self, name: &str, entry: Entry) -> StorageResult<()> {
        // As Pyro4: drop the old row and its metadata, insert anew, in one transaction
        // that is committed (and, with synchronous=FULL, fsynced) before returning.
        self.with_conn("setitem", |c| {
            let tx = c.transaction()?;
            delete_name(&tx, name)?;
            tx.execute(
                "INSERT INTO pyro_names(name, uri) VALUES(?1, ?2)",
                params![name, entry.uri],
            )?;
            let id = tx.last_insert_rowid();
            for tag in &entry.metadata {
                tx.execute(
                    "INSERT INTO pyro_metadata(object, metadata) VALUES (?1, ?2)",
                    params![id, tag],
                )?;
            }
            tx.commit()
        })
    }

    fn remove_items(&self, names: &[String]) -> StorageResult<()> {
        self.with_conn("remove_items", |c| {
            let tx = c.transaction()?;
            for name in names {
                delete_name(&tx, name)?;
            }
            tx.commit()
        })
    }

    fn everything(&self) -> StorageResult<Vec<(String, Entry)>> {
        self.with_conn("everything", |c| {
            entries(c, "SELECT id, name, uri FROM pyro_names ORDER BY id", [])
        })
    }

    fn prefix_list(&self, prefix: &str) -> StorageResult<Option<Vec<(String, Entry)>>> {
        // Pyro4 uses `name LIKE prefix%`: ASCII case-insensitive, and `%`/`_` in the
        // prefix are wildcards. Kept for compatibility with Pyro4's sql storage.
        let pattern = format!("{prefix}%");
        self.with_conn("optimized_prefix_list", |c| {
            entries(
                c,
                "SELECT id, name, uri FROM pyro_names WHERE name LIKE ?1 ORDER BY id",
                params![pattern],
            )
        })
        .map(Some)
    }

    fn metadata_search(
        &self,
        tags: &[String],
        all: bool,
    ) -> StorageResult<Option<Vec<(String, Entry)>>> {
        if tags.is_empty() {
            return Ok(None);
        }
        let seq = vec!["?"; tags.len()].join(",");
        let sql = if all {
            format!(
                "SELECT id, name, uri FROM pyro_names WHERE id IN (SELECT object FROM pyro_metadata \
                 WHERE metadata IN ({seq}) GROUP BY object HAVING COUNT(metadata)=?) ORDER BY id"
            )
        } else {
            format!(
                "SELECT id, name, uri FROM pyro_names WHERE id IN (SELECT object FROM pyro_metadata \
                 WHERE metadata IN ({seq})) ORDER BY id"
            )
        };
        let mut params: Vec<rusqlite::types::Value> = tags
            .iter()
            .map(|t| rusqlite::types::Value::Text(t.clone()))
            .collect();
        if all {
            params.push(rusqlite::types::Value::Integer(
                i64::try_from(tags.len()).unwrap_or(i64::MAX),
            ));
        }
        self.with_conn("optimized_metadata_search", |c| {
            entries(c, &sql, params_from_iter(params))
        })
        .map(Some)
    }

    fn close(&self) {
        if let Ok(mut guard) = self.conn.lock() {
            if let Some(conn) = guard.take() {
                // Closing the last connection checkpoints the WAL into the main file.
                if let Err((_, e)) = conn.close() {
                    tracing::warn!("sqlite storage close: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    fn tmpfile(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pyro-ns-sql-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn memory_database_is_refused() {
        let e = SqlStorage::open(":memory:").unwrap_err();
        assert!(e.0.contains(":memory:"), "{e}");
    }

    #[test]
    fn registrations_persist_and_search() {
        let path = tmpfile("ns.db");
        {
            let s = SqlStorage::open(&path).unwrap();
            s.set("Test.a", Entry::new("PYRO:a@h:1", tags(&["x", "y"])))
                .unwrap();
            s.set("test.b", Entry::new("PYRO:b@h:1", tags(&["y"])))
                .unwrap();
            s.set("other", Entry::new("PYRO:o@h:1", Vec::new()))
                .unwrap();
            s.set("test.b", Entry::new("PYRO:b2@h:1", tags(&["z"])))
                .unwrap();
            s.close();
            assert!(s.len().is_err(), "closed storage refuses calls");
        }
        let s = SqlStorage::open(&path).unwrap();
        assert_eq!(s.len().unwrap(), 3);
        let b = s.get("test.b").unwrap().unwrap();
        assert_eq!(b, Entry::new("PYRO:b2@h:1", tags(&["z"])));
        // LIKE: case-insensitive, as Pyro4's sql storage
        let names: Vec<String> = s
            .prefix_list("test.")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, tags(&["Test.a", "test.b"]));
        let all = s
            .metadata_search(&tags(&["x", "y"]), true)
            .unwrap()
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "Test.a");
        let any = s
            .metadata_search(&tags(&["y", "z"]), false)
            .unwrap()
            .unwrap();
        assert_eq!(any.len(), 2);
        s.remove_items(&tags(&["Test.a", "nope"])).unwrap();
        assert_eq!(s.len().unwrap(), 2);
        assert!(!s.contains("Test.a").unwrap());
        // the metadata rows went with it (foreign key would refuse otherwise)
        let n: i64 = s
            .with_conn("t", |c| {
                c.query_row("SELECT count(*) FROM pyro_metadata", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn old_schema_is_migrated() {
        let path = tmpfile("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE, uri nvarchar NOT NULL);
                 INSERT INTO pyro_names(name, uri) VALUES ('old', 'PYRO:old@h:1');",
            )
            .unwrap();
        }
        let s = SqlStorage::open(&path).unwrap();
        assert_eq!(s.get("old").unwrap(), Some(Entry::new("PYRO:old@h:1", [])));
        s.set("new", Entry::new("PYRO:n@h:1", tags(&["t"])))
            .unwrap();
        assert_eq!(s.len().unwrap(), 2);
    }
}
