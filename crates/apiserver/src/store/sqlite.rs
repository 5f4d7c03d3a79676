//! The SQLite backend: kine's log table plus a current-state table.
//!
//! ```text
//!   log      id (= revision) | name | created | deleted | create_revision | prev_revision | value
//!            UNIQUE (name, prev_revision): two writes that both think they follow
//!            the same row of a key cannot both land.
//!   current  name -> id of the key's live row (deleted keys are absent)
//!   meta     schema, revision (the last one taken), compacted
//! ```
//!
//! A delete appends a tombstone row (`deleted = 1`) that carries the deleted
//! value. Per key, `prev_revision` links each row to the one before it, so it
//! grows with `id` and the unique index on `(name, prev_revision)` also serves
//! "the rows of a key in revision order".
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a commit appends its
//! frames to the `-wal` file with `write()` and returns without fsync; SQLite
//! itself fsyncs the WAL before each checkpoint copies frames into the database
//! file and fsyncs the database file after it, and only restarts the WAL from
//! its start after such a complete checkpoint. The writer acknowledges nothing
//! on commit: `WalSync` (run by the syncer thread) fdatasyncs the `-wal` file
//! through its own descriptor, which flushes the inode's dirty pages whoever
//! wrote them, and only then are the batches committed before it answered.
//! The `-wal` file keeps its inode while the store is open: SQLite deletes it
//! only when the last connection closes, and the writer's connection closes
//! after the last flush. Readers use their own connections (a small pool) and
//! read a snapshot inside a read transaction, so they never block the writer
//! and the writer never blocks them.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};

use super::backend::{Durability, LogReader, LogWriter, Recovered, WriteKind, WriteOp};
use super::error::{Error, Result, storage};
use super::types::{Event, KeyRange, KeyValue, ListRequest, ListResponse, Revision};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_name_prev ON log (name, prev_revision);
CREATE TABLE IF NOT EXISTS current (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const STATEMENT_CACHE: usize = 64;

/// Opens (creating if needed) the database at `path`.
pub(crate) fn open(
    path: &Path,
    read_connections: usize,
    lock_wait: Duration,
) -> Result<(SqliteWriter, SqliteReader, Recovered)> {
    let fail = |step: &'static str| {
        move |source| Error::Open {
            path: path.to_owned(),
            step,
            source: Arc::new(source),
        }
    };
    let lock = lock(path, lock_wait)?;
    let mut conn = Connection::open(path).map_err(fail("opening the database file"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(fail("setting the busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(fail("switching to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt {
            detail: format!("{} cannot use WAL mode (got {mode})", path.display()),
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail("setting synchronous=NORMAL"))?;
    reuse_statements(&conn).map_err(fail("fixing query plans"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("locking the database to create the schema"))?;
    tx.execute_batch(SCHEMA)
        .map_err(fail("creating the schema"))?;
    let version: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(fail("reading the schema version"))?;
    match version {
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION],
            )
            .map_err(fail("recording the schema version"))?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(Error::Corrupt {
                detail: format!(
                    "{} has schema version {other}, this build knows {SCHEMA_VERSION}",
                    path.display()
                ),
            });
        }
    }
    let (revision, compacted) = meta(&tx)?;
    tx.commit().map_err(fail("committing the schema"))?;
    let wal = WalSync::open(path)?;
    // The schema commit above was not flushed either.
    wal.sync().map_err(|source| Error::OpenFile {
        path: path.to_owned(),
        step: "flushing the -wal file",
        source: Arc::new(source),
    })?;
    let reader = SqliteReader {
        path: path.to_owned(),
        idle: Mutex::new(Vec::new()),
        max_idle: read_connections.max(1),
    };
    // Open one read connection now so that a file readers cannot open fails
    // here rather than on the first read.
    let first = reader.connect()?;
    reader.release(first);
    Ok((
        SqliteWriter {
            conn,
            wal: Some(wal),
            _lock: lock,
        },
        reader,
        Recovered {
            revision,
            compacted,
        },
    ))
}

/// Makes cached statements reusable as they are. Without the query planner
/// stability guarantee, SQLite marks every statement with a `column = ?`
/// term as depending on the value bound (whether it is 0 or 1 may change the
/// plan), and rusqlite clears the bindings of each statement it puts back in
/// its cache, which then expires it: every cached statement was compiled
/// again on its next step (`sqlite3Reprepare`, ~16% of a create's CPU). Our
/// queries have one good plan whatever the values.
fn reuse_statements(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Takes the exclusive lock on `<path>.lock`: two writers on one database would
/// hand out the same revisions.
fn lock(path: &Path, wait: Duration) -> Result<File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| Error::Lock {
            path: lock_path.clone(),
            source: Arc::new(source),
        })?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked { path: lock_path });
            }
            Err(TryLockError::Error(source)) => {
                return Err(Error::Lock {
                    path: lock_path,
                    source: Arc::new(source),
                });
            }
        }
    }
}

fn meta(conn: &Connection) -> Result<(Revision, Revision)> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'revision'), \
                    (SELECT value FROM meta WHERE key = 'compacted')",
        )
        .map_err(storage("preparing the revision query"))?;
    stmt.query_row([], |r| {
        Ok((
            r.get::<_, Option<i64>>(0)?.unwrap_or(0),
            r.get::<_, Option<i64>>(1)?.unwrap_or(0),
        ))
    })
    .map_err(storage("reading the current and compacted revisions"))
}

// === impl SqliteWriter ===

/// Flushes the `-wal` file: what makes this backend's commits durable.
pub(crate) struct WalSync {
    wal: File,
}

impl WalSync {
    /// Opens the `-wal` file of the database at `path` (which an open
    /// connection in WAL mode has created) and makes the directory entries of
    /// the database and of the WAL durable, once: a flushed file whose name is
    /// not on disk is lost as well.
    fn open(path: &Path) -> Result<WalSync> {
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let fail = |step: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| Error::OpenFile {
                path,
                step,
                source: Arc::new(source),
            }
        };
        let wal = File::open(&wal_path).map_err(fail("opening the -wal file", &wal_path))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail("flushing the data directory", dir))?;
        Ok(WalSync { wal })
    }

    fn sync(&self) -> std::io::Result<()> {
        self.wal.sync_data()
    }
}

impl Durability for WalSync {
    fn sync(&mut self) -> std::io::Result<()> {
        WalSync::sync(self)
    }
}

pub(crate) struct SqliteWriter {
    conn: Connection,
    /// Taken by the writer thread for its syncer (`LogWriter::durability`).
    wal: Option<WalSync>,
    /// Held while the writer lives; the OS releases it if the process dies.
    _lock: File,
}

/// The live row of a key.
struct Live {
    id: Revision,
    create_revision: Revision,
    value: Bytes,
}

impl LogWriter for SqliteWriter {
    fn append(&mut self, ops: &[WriteOp], first: Revision) -> Result<Vec<Result<Event>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage("beginning a write transaction"))?;
        let mut next = first;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = apply(&tx, op, next)?;
            if result.is_ok() {
                next += 1;
            }
            results.push(result);
        }
        if next > first {
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'revision'")
                .and_then(|mut s| s.execute([next - 1]))
                .map_err(storage("recording the revision"))?;
        }
        tx.commit().map_err(storage("committing a write batch"))?;
        Ok(results)
    }

    fn compact(&mut self, from: Revision, to: Revision) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage("beginning a compaction"))?;
        // Rows superseded by a row in (from, to]; rows superseded earlier went
        // in earlier steps. Rows superseded after `to` stay: a list at a
        // revision >= `to` may still need them.
        tx.execute(
            "DELETE FROM log WHERE id IN \
             (SELECT prev_revision FROM log WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
            [from, to],
        )
        .map_err(storage("deleting superseded rows"))?;
        tx.execute(
            "DELETE FROM log WHERE id > ?1 AND id <= ?2 AND deleted = 1",
            [from, to],
        )
        .map_err(storage("deleting tombstones"))?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'compacted'", [to])
            .map_err(storage("recording the compacted revision"))?;
        tx.commit().map_err(storage("committing a compaction"))
    }

    fn durability(&mut self) -> Option<Box<dyn Durability>> {
        self.wal
            .take()
            .map(|wal| Box::new(wal) as Box<dyn Durability>)
    }
}

const LIVE_SQL: &str = "SELECT l.id, l.create_revision, l.value FROM current c \
                        JOIN log l ON l.id = c.id WHERE c.name = ?1";

const INSERT_SQL: &str = "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const GET_SQL: &str = "SELECT c.name, l.id, l.create_revision, l.value FROM current c \
                       JOIN log l ON l.id = c.id WHERE c.name = ?1";

fn live(tx: &Transaction<'_>, key: &str) -> Result<Option<Live>> {
    tx.prepare_cached(LIVE_SQL)
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok(Live {
                    id: r.get(0)?,
                    create_revision: r.get(1)?,
                    value: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                })
            })
            .optional()
        })
        .map_err(storage("reading a key's live row"))
}

/// Applies one write inside the batch transaction. The outer `Err` is a storage
/// failure that aborts the batch; the inner one a failed precondition.
fn apply(tx: &Transaction<'_>, op: &WriteOp, revision: Revision) -> Result<Result<Event>> {
    let current = live(tx, &op.key)?;
    let key = || op.key.clone();
    let (row, event) = match (&op.kind, current) {
        (WriteKind::Create, Some(_)) => return Ok(Err(Error::AlreadyExists { key: key() })),
        (WriteKind::Update { .. } | WriteKind::Delete { .. }, None) => {
            return Ok(Err(Error::NotFound { key: key() }));
        }
        (WriteKind::Update { expected }, Some(cur))
        | (
            WriteKind::Delete {
                expected: Some(expected),
            },
            Some(cur),
        ) if cur.id != *expected => {
            return Ok(Err(Error::Conflict {
                key: key(),
                expected: *expected,
                current: cur.id,
            }));
        }
        (WriteKind::Create, None) => {
            let prev = tx
                .prepare_cached(
                    "SELECT id FROM log WHERE name = ?1 ORDER BY prev_revision DESC LIMIT 1",
                )
                .and_then(|mut s| s.query_row([&op.key], |r| r.get::<_, i64>(0)).optional())
                .map_err(storage("reading a key's last tombstone"))?;
            let kv = KeyValue {
                key: key(),
                value: op.value.clone(),
                create_revision: revision,
                mod_revision: revision,
            };
            let row = Row {
                created: true,
                deleted: false,
                prev_revision: prev.unwrap_or(0),
                value: &op.value,
            };
            (row, Event::Put { kv, prev: None })
        }
        (WriteKind::Update { .. }, Some(cur)) => {
            let kv = KeyValue {
                key: key(),
                value: op.value.clone(),
                create_revision: cur.create_revision,
                mod_revision: revision,
            };
            let prev = KeyValue {
                key: key(),
                value: cur.value,
                create_revision: cur.create_revision,
                mod_revision: cur.id,
            };
            let row = Row {
                created: false,
                deleted: false,
                prev_revision: cur.id,
                value: &op.value,
            };
            (
                row,
                Event::Put {
                    kv,
                    prev: Some(prev),
                },
            )
        }
        (WriteKind::Delete { .. }, Some(cur)) => {
            let kv = KeyValue {
                key: key(),
                value: cur.value,
                create_revision: cur.create_revision,
                mod_revision: revision,
            };
            let row = Row {
                created: false,
                deleted: true,
                prev_revision: cur.id,
                // The tombstone carries the deleted value, for watch history.
                value: &kv.value,
            };
            return insert(tx, &op.key, revision, kv.create_revision, &row)
                .map(|inserted| inserted.map(|()| Event::Delete { kv: kv.clone() }));
        }
    };
    let create_revision = event.kv().create_revision;
    Ok(insert(tx, &op.key, revision, create_revision, &row)?.map(|()| event))
}

struct Row<'a> {
    created: bool,
    deleted: bool,
    prev_revision: Revision,
    value: &'a [u8],
}

fn insert(
    tx: &Transaction<'_>,
    key: &str,
    revision: Revision,
    create_revision: Revision,
    row: &Row<'_>,
) -> Result<Result<()>> {
    let inserted = tx.prepare_cached(INSERT_SQL).and_then(|mut s| {
        s.execute((
            revision,
            key,
            row.created,
            row.deleted,
            create_revision,
            row.prev_revision,
            row.value,
        ))
    });
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            // Another row already follows `prev_revision`: the same race the
            // precondition check catches, reported the same way.
            return Ok(Err(Error::Conflict {
                key: key.to_owned(),
                expected: row.prev_revision,
                current: row.prev_revision,
            }));
        }
        Err(e) => return Err(storage("appending to the log")(e)),
    }
    let updated = if row.deleted {
        tx.prepare_cached("DELETE FROM current WHERE name = ?1")
            .and_then(|mut s| s.execute([key]))
    } else {
        tx.prepare_cached(
            "INSERT INTO current (name, id) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET id = excluded.id",
        )
        .and_then(|mut s| s.execute((key, revision)))
    };
    updated.map_err(storage("updating the current state"))?;
    Ok(Ok(()))
}

// === impl SqliteReader ===

pub(crate) struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl SqliteReader {
    fn connect(&self) -> Result<Connection> {
        let fail = |step: &'static str| {
            let path = self.path.clone();
            move |source| Error::Open {
                path,
                step,
                source: Arc::new(source),
            }
        };
        let conn = Connection::open(&self.path).map_err(fail("opening a read connection"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(fail("setting the busy timeout"))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(fail("making a read connection read-only"))?;
        reuse_statements(&conn).map_err(fail("fixing query plans"))?;
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        self.release(conn);
        result
    }
}

/// SQL for "`col` is in `range`", with `:lower` and (if bounded) `:upper`.
fn range_sql(col: &str, range: &KeyRange) -> String {
    let op = if range.lower_inclusive { ">=" } else { ">" };
    match range.upper {
        Some(_) => format!("{col} {op} :lower AND {col} < :upper"),
        None => format!("{col} {op} :lower"),
    }
}

fn range_params(range: &KeyRange) -> Vec<(&'static str, &dyn ToSql)> {
    let mut params: Vec<(&'static str, &dyn ToSql)> = vec![(":lower", &range.lower)];
    if let Some(upper) = &range.upper {
        params.push((":upper", upper));
    }
    params
}

fn kv_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        mod_revision: r.get(1)?,
        create_revision: r.get(2)?,
        value: Bytes::from(r.get::<_, Vec<u8>>(3)?),
    })
}

/// The two ways to read a page: from `current` (at the current revision) or
/// from the log (at an older one).
enum Source {
    Current,
    Log { at: Revision },
}

impl Source {
    fn select(&self, range: &KeyRange) -> String {
        match self {
            Source::Current => format!(
                "SELECT c.name, l.id, l.create_revision, l.value FROM current c \
                 JOIN log l ON l.id = c.id WHERE {} ORDER BY c.name LIMIT :limit",
                range_sql("c.name", range)
            ),
            Source::Log { .. } => format!(
                "SELECT l.name, l.id, l.create_revision, l.value \
                 FROM log l INDEXED BY log_name_prev \
                 WHERE {} AND l.id <= :at AND l.deleted = 0 AND NOT EXISTS \
                 (SELECT 1 FROM log n WHERE n.name = l.name AND n.prev_revision >= l.id \
                  AND n.id <= :at) ORDER BY l.name LIMIT :limit",
                range_sql("l.name", range)
            ),
        }
    }
}

/// How many keys of `range` exist at `at`: the keys that exist now, corrected
/// by the few keys written after `at` (existing now but not then, or then but
/// not now). This costs a covering index count plus the writes since `at`,
/// where counting the log directly would cost the whole range's history.
fn count_at(conn: &Connection, range: &KeyRange, at: Option<Revision>) -> Result<i64> {
    let now = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM current WHERE {}",
            range_sql("name", range)
        ))
        .and_then(|mut s| s.query_row(range_params(range).as_slice(), |r| r.get::<_, i64>(0)))
        .map_err(storage("counting the remaining keys"))?;
    let Some(at) = at else {
        return Ok(now);
    };
    let mut params = range_params(range);
    params.push((":at", &at));
    let (exist_now, existed) = conn
        .prepare_cached(&format!(
            "SELECT COALESCE(SUM(c.name IS NOT NULL), 0), \
                    COALESCE(SUM((SELECT l.deleted = 0 FROM log l \
                                  WHERE l.name = k.name AND l.id <= :at \
                                  ORDER BY l.prev_revision DESC LIMIT 1)), 0) \
             FROM (SELECT DISTINCT name FROM log WHERE id > :at AND {}) k \
             LEFT JOIN current c ON c.name = k.name",
            range_sql("name", range)
        ))
        .and_then(|mut s| {
            s.query_row(params.as_slice(), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
        })
        .map_err(storage(
            "counting the keys changed since the list's revision",
        ))?;
    Ok(now - exist_now + existed)
}

fn list_page(
    conn: &Connection,
    source: &Source,
    range: &KeyRange,
    limit: Option<usize>,
) -> Result<(Vec<KeyValue>, u64)> {
    let sql_limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut params = range_params(range);
    params.push((":limit", &sql_limit));
    let at = match source {
        Source::Current => None,
        Source::Log { at } => Some(*at),
    };
    if let Some(at) = &at {
        params.push((":at", at));
    }
    let items = conn
        .prepare_cached(&source.select(range))
        .and_then(|mut s| {
            s.query_map(params.as_slice(), kv_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(storage("listing keys"))?;
    let full_page = limit.is_some_and(|l| items.len() >= l);
    let remaining = match items.last() {
        Some(last) if full_page => {
            let mut rest = range.clone();
            rest.cut_after(&last.key);
            count_at(conn, &rest, at)?
        }
        _ => 0,
    };
    Ok((items, u64::try_from(remaining).unwrap_or(0)))
}

impl LogReader for SqliteReader {
    fn blocking(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.with_conn(|conn| {
            conn.prepare_cached(GET_SQL)
                .and_then(|mut s| s.query_row([key], kv_from_row).optional())
                .map_err(storage("reading a key"))
        })
    }

    fn list(&self, req: &ListRequest) -> Result<ListResponse> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction()
                .map_err(storage("beginning a read transaction"))?;
            let (revision, compacted) = meta(&tx)?;
            let at = req.at.unwrap_or(revision);
            if at < compacted {
                return Err(Error::Compacted {
                    requested: at,
                    compacted,
                });
            }
            if at > revision {
                return Err(Error::FutureRevision {
                    requested: at,
                    current: revision,
                });
            }
            let range = KeyRange::page(&req.prefix, req.start_after.as_deref());
            let (items, remaining) = if range.is_empty() {
                (Vec::new(), 0)
            } else {
                let source = if at == revision {
                    Source::Current
                } else {
                    Source::Log { at }
                };
                list_page(&tx, &source, &range, req.effective_limit())?
            };
            Ok(ListResponse {
                items,
                revision: at,
                more: remaining > 0,
                remaining,
            })
        })
    }

    fn events(
        &self,
        range: &KeyRange,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction()
                .map_err(storage("beginning a read transaction"))?;
            let (_, compacted) = meta(&tx)?;
            if after < compacted {
                return Err(Error::Compacted {
                    requested: after,
                    compacted,
                });
            }
            let sql = format!(
                "SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.value, \
                        p.id, p.create_revision, p.value \
                 FROM log l LEFT JOIN log p \
                   ON p.id = l.prev_revision AND l.created = 0 AND l.deleted = 0 \
                 WHERE l.id > :after AND l.id <= :upto AND {} ORDER BY l.id LIMIT :limit",
                range_sql("l.name", range)
            );
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut params = range_params(range);
            params.push((":after", &after));
            params.push((":upto", &upto));
            params.push((":limit", &limit));
            tx.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(params.as_slice(), event_from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(storage("reading watch history"))
        })
    }
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kv = KeyValue {
        mod_revision: r.get(0)?,
        key: r.get(1)?,
        create_revision: r.get(4)?,
        value: Bytes::from(r.get::<_, Vec<u8>>(5)?),
    };
    if r.get::<_, bool>(3)? {
        return Ok(Event::Delete { kv });
    }
    let prev = match r.get::<_, Option<i64>>(6)? {
        Some(id) => Some(KeyValue {
            key: kv.key.clone(),
            mod_revision: id,
            create_revision: r.get(7)?,
            value: Bytes::from(r.get::<_, Vec<u8>>(8)?),
        }),
        None => None,
    };
    Ok(Event::Put { kv, prev })
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    fn recompiled(conn: &Connection, sql: &str) -> i32 {
        conn.prepare_cached(sql)
            .unwrap()
            .get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn commits_without_fsync_come_with_a_flush_of_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (mut writer, _reader, _) = open(&path, 1, Duration::from_secs(1)).unwrap();
        let synchronous: i64 = writer
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        // 1 is NORMAL: the commit leaves the flush to the syncer, so the
        // writer must hand it one, once.
        assert_eq!(synchronous, 1);
        let mut durability = writer.durability().expect("a WAL flush");
        assert!(writer.durability().is_none());
        let op = WriteOp {
            key: "/k".to_owned(),
            value: Bytes::from_static(b"{}"),
            kind: WriteKind::Create,
        };
        assert!(writer.append(&[op], 1).unwrap()[0].is_ok());
        durability.sync().unwrap();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    }

    #[test]
    fn cached_statements_are_not_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader, _) =
            open(&dir.path().join("db"), 1, Duration::from_secs(1)).unwrap();
        for i in 0..20 {
            let op = WriteOp {
                key: format!("/k/{i}"),
                value: Bytes::from_static(b"{}"),
                kind: WriteKind::Create,
            };
            let results = writer.append(&[op], i + 1).unwrap();
            assert!(results[0].is_ok());
        }
        for i in 0..20 {
            assert!(reader.get(&format!("/k/{i}")).unwrap().is_some());
        }
        assert_eq!(recompiled(&writer.conn, LIVE_SQL), 0);
        assert_eq!(recompiled(&writer.conn, INSERT_SQL), 0);
        let in_reader = reader
            .with_conn(|conn| Ok(recompiled(conn, GET_SQL)))
            .unwrap();
        assert_eq!(in_reader, 0);
    }
}
