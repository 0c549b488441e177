//! The PostgreSQL engine: Vault's table layout (`vault_kv_store`), a pool of long-lived
//! connections (`deadpool-postgres` over `tokio-postgres`); with HA, every write is fenced by the
//! lock row of `pg_lock.rs`.
//!
//! A logical key `a/b/c` is stored as `parent_path = "/a/"`, `path = "/a/b/"`, `key = "c"` (a key
//! without `/` has `path = "/"` and `parent_path = ""`), so a database written by Vault reads the
//! same here. Listing never uses `LIKE`: leaves are found by `path = $1` equality and sub-folders
//! by a byte-order range on `path` (the primary key's first column, `COLLATE "C"`), so `_`, `%` and
//! `\` in keys are ordinary characters.
//!
//! Every write is committed (with PostgreSQL's default `synchronous_commit = on`) before it
//! returns, as one statement — together with concurrent writes of other callers (group commit,
//! `pg_write.rs`).
//!
//! Fencing (HA): every write statement starts with a CTE that locks the lock row `FOR KEY SHARE`
//! where `ha_identity` is ours and the lease has not run out (`clock_timestamp()`), and writes
//! only rows joined with it. No row, no write — decided inside the statement that writes, not by
//! a check before it. `FOR KEY SHARE` does not conflict with the holder's own renewals (a non-key
//! update of `valid_until`), but does with a takeover (which rewrites `ha_identity`, unique, so a
//! key update), `DELETE` and `TRUNCATE`: those wait until in-flight fenced writes commit, and
//! every later write of the old holder finds no row. So every committed write is ordered before
//! any change of ownership.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::{PhysicalBackend, StorageError, WriteOp, children};
use crate::telemetry;

/// Vault's default data table.
pub const DEFAULT_TABLE: &str = "vault_kv_store";
/// Vault's default lock table (used once HA exists).
pub const DEFAULT_HA_TABLE: &str = "vault_ha_locks";
/// Vault's default `max_parallel`.
pub const DEFAULT_MAX_PARALLEL: usize = 128;
/// The environment variable that overrides `connection_url`, as in Vault.
pub const URL_ENV: &str = "VAULT_PG_CONNECTION_URL";

/// How long opening one connection, or waiting for a free one, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Set on every connection of the data pool: a statement waiting on a lock or a stalled server
/// fails after 10 s instead of holding its request (and `sys/health`, `sys/step-down`) for
/// as long as TCP takes (hashicorp/vault#10619); a transaction a frozen client left open is
/// ended after 2 s (it would hold row locks a takeover waits for).
const SESSION_LIMITS: &str =
    "SET statement_timeout = 10000; SET idle_in_transaction_session_timeout = 2000";
/// Unacknowledged data this long ends a connection (`TCP_USER_TIMEOUT`).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);
/// Idle connections are probed after this long (the default is two hours).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// What the engine needs to open (the `storage "postgresql"` settings, after the env override).
#[derive(Clone)]
pub struct PostgresqlOptions {
    /// libpq-style URL or keyword DSN. Never logged: it can hold a password.
    pub connection_url: String,
    /// The data table (one identifier; quoted, so a dot is part of the name).
    pub table: String,
    /// Maximum open connections.
    pub max_parallel: usize,
    /// Create the table (and its index) when it does not exist.
    pub create_table: bool,
    /// HA: the lock table; every write is then fenced by it.
    pub ha_table: Option<String>,
}

/// The identity under which this node holds the HA lock, shared by the engine (which conditions
/// every write on it) and the HA loop (which sets it on acquisition and clears it on release).
#[derive(Debug, Default)]
pub struct Fence {
    identity: ArcSwapOption<String>,
    lost: tokio::sync::Notify,
}

impl Fence {
    /// Sets (or clears) the identity writes are fenced with.
    pub fn hold(&self, identity: Option<String>) {
        self.identity.store(identity.map(Arc::new));
    }

    /// The current identity.
    pub fn identity(&self) -> Option<Arc<String>> {
        self.identity.load_full()
    }

    /// Notified when a write found the lock no longer ours.
    pub fn lost(&self) -> &tokio::sync::Notify {
        &self.lost
    }

    /// A write under `identity` was refused by the database: forget it (unless a newer one was
    /// set meanwhile) and tell the HA loop.
    pub(super) fn refused(&self, identity: &Arc<String>) {
        let previous = self.identity.compare_and_swap(identity, None);
        if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, identity)) {
            self.lost.notify_one();
        }
    }
}

impl std::fmt::Debug for PostgresqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresqlOptions")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("max_parallel", &self.max_parallel)
            .field("create_table", &self.create_table)
            .field("ha_table", &self.ha_table)
            .finish()
    }
}

pub(super) fn engine(e: impl std::error::Error) -> StorageError {
    StorageError::other(format!("postgresql: {}", error_chain(&e)))
}

/// An error with its sources (`db error: ERROR: relation ... does not exist`): the driver's own
/// text for a server error is only `db error`. None of them holds the connection string.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `name` as one SQL identifier: in double quotes, inner quotes doubled (as Vault does).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Vault's split of a logical key into `(parent_path, path, key)`.
pub fn split_key(full: &str) -> (String, String, String) {
    match full.rsplit_once('/') {
        None => (String::new(), "/".to_owned(), full.to_owned()),
        Some((dir, key)) => {
            let path = format!("/{dir}/");
            let parent = match dir.rsplit_once('/') {
                None => "/".to_owned(),
                Some((up, _)) => format!("/{up}/"),
            };
            (parent, path, key.to_owned())
        }
    }
}

/// The smallest string greater than every string starting with `folder` (which ends with `/`):
/// the final `/` becomes `0`, the next byte.
fn folder_end(folder: &str) -> String {
    let mut end = folder.strip_suffix('/').unwrap_or(folder).to_owned();
    end.push('0');
    end
}

/// The SQL statements for one table.
struct Statements {
    get: String,
    put: String,
    delete: String,
    batch: String,
    list_keys: String,
    list_folders: String,
    scan: String,
}

impl Statements {
    /// With `ha_table`, writes take the lock key and our identity as `$1`, `$2` and are fenced;
    /// they all answer one row: the number of lock rows matched (0 = fenced, nothing written).
    fn new(table: &str, ha_table: Option<&str>) -> Self {
        let t = quote_identifier(table);
        let (lock, o) = match ha_table {
            Some(ha) => (
                format!(
                    "SELECT 1 FROM {} WHERE ha_key = $1 AND ha_identity = $2 \
                     AND valid_until > clock_timestamp() FOR KEY SHARE",
                    quote_identifier(ha)
                ),
                2,
            ),
            None => ("SELECT 1".to_owned(), 0),
        };
        let p = |i: usize| format!("${}", i + o);
        let upsert = "ON CONFLICT (path, key) DO UPDATE SET parent_path = EXCLUDED.parent_path, value = EXCLUDED.value";
        Statements {
            get: format!("SELECT value FROM {t} WHERE path = $1 AND key = $2"),
            put: format!(
                "WITH l AS ({lock}), w AS (INSERT INTO {t} (parent_path, path, key, value) \
                 SELECT {}::text, {}::text, {}::text, {}::bytea FROM l {upsert}) \
                 SELECT count(*) FROM l",
                p(1),
                p(2),
                p(3),
                p(4)
            ),
            delete: format!(
                "WITH l AS ({lock}), w AS (DELETE FROM {t} WHERE path = {} AND key = {} \
                 AND EXISTS (SELECT 1 FROM l)) SELECT count(*) FROM l",
                p(1),
                p(2)
            ),
            // Deletes and puts of distinct keys (the batch is reduced to the last op per key).
            batch: format!(
                "WITH l AS ({lock}), \
                 d AS (DELETE FROM {t} USING unnest({}::text[], {}::text[]) AS x(p, k) \
                   WHERE {t}.path = x.p AND {t}.key = x.k AND EXISTS (SELECT 1 FROM l)), \
                 w AS (INSERT INTO {t} (parent_path, path, key, value) \
                   SELECT u.pp, u.p, u.k, u.v FROM unnest({}::text[], {}::text[], {}::text[], {}::bytea[]) \
                   AS u(pp, p, k, v) WHERE EXISTS (SELECT 1 FROM l) {upsert}) \
                 SELECT count(*) FROM l",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            ),
            list_keys: format!("SELECT key FROM {t} WHERE path = $1"),
            // Every path strictly below the folder $1 (byte order, via the primary key), reduced
            // to its first segment.
            list_folders: format!(
                "SELECT DISTINCT split_part(substr(path, char_length($1) + 1), '/', 1) FROM {t} \
                 WHERE path > $1 AND path < $2"
            ),
            // Full keys starting with $1, among rows whose folder lies in the range [$2, $3).
            scan: format!(
                "SELECT k FROM (SELECT substr(path, 2) || key COLLATE \"C\" AS k FROM {t} \
                 WHERE path >= $2 AND path < $3) AS s \
                 WHERE left(k, char_length($1)) = $1 ORDER BY k COLLATE \"C\" LIMIT $4"
            ),
        }
    }
}

/// The PostgreSQL engine.
pub struct PostgresqlBackend {
    pool: Pool,
    sql: Statements,
    writer: super::pg_write::Writer,
    table: String,
    config: tokio_postgres::Config,
    connector: super::pg_tls::RustlsConnector,
    ha_table: Option<String>,
    fence: Option<Arc<Fence>>,
}

impl std::fmt::Debug for PostgresqlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresqlBackend")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PostgresqlBackend {
    /// Connects (failing when the database cannot be reached), checks the server version and
    /// creates the table when missing (if asked to).
    pub async fn open(options: &PostgresqlOptions) -> Result<Self, String> {
        if options.connection_url.trim().is_empty() {
            return Err(format!(
                "missing connection_url (set it in the storage block or in {URL_ENV})"
            ));
        }
        let (url, tls) = super::pg_tls::split_url(&options.connection_url)
            .map_err(|e| format!("invalid connection_url: {e}"))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("invalid connection_url: {e}"))?;
        config.ssl_mode(tls.driver_mode());
        let connector = tls.connector()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("coffer");
        }
        // A connection whose packets go unacknowledged is given up (the server's statement
        // timeout cannot reach a client whose network dropped them).
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_parallel.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION_LIMITS)
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| format!("connection pool: {e}"))?;
        let fence = options
            .ha_table
            .as_ref()
            .map(|_| Arc::new(Fence::default()));
        let sql = Statements::new(&options.table, options.ha_table.as_deref());
        let writer = super::pg_write::Writer::new(
            pool.clone(),
            super::pg_write::WriteSql {
                put: sql.put.clone(),
                delete: sql.delete.clone(),
                batch: sql.batch.clone(),
            },
            fence.clone(),
        );
        let backend = PostgresqlBackend {
            pool,
            sql,
            writer,
            table: options.table.clone(),
            config,
            connector,
            ha_table: options.ha_table.clone(),
            fence,
        };
        backend
            .prepare(options.create_table)
            .await
            .map_err(|e| e.to_string())?;
        Ok(backend)
    }

    async fn prepare(&self, create_table: bool) -> Result<(), StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(engine)?;
        let version: i32 = row.try_get(0).map_err(engine)?;
        if version < 90500 {
            return Err(StorageError::other(format!(
                "postgresql: PostgreSQL version must be at least 9.5 (server_version_num {version})"
            )));
        }
        if !create_table {
            return self.check_fence_index(&client).await;
        }
        if let Some(ha) = &self.ha_table {
            let h = quote_identifier(ha);
            let pkey = quote_identifier(&format!("{ha}_pkey"));
            let idx = quote_identifier(&format!("{ha}_identity_idx"));
            // The unique index makes a takeover (which rewrites ha_identity) a key update, which
            // conflicts with the fenced writers' FOR KEY SHARE (see the module docs).
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {h} (\
                   ha_key TEXT COLLATE \"C\" NOT NULL, \
                   ha_identity TEXT COLLATE \"C\" NOT NULL, \
                   ha_value TEXT COLLATE \"C\", \
                   valid_until TIMESTAMP WITH TIME ZONE NOT NULL, \
                   CONSTRAINT {pkey} PRIMARY KEY (ha_key)); \
                 CREATE UNIQUE INDEX IF NOT EXISTS {idx} ON {h} (ha_identity);"
            );
            // Nodes starting together may race on CREATE ... IF NOT EXISTS: one retry settles it.
            if !Self::fence_index_exists(&client, &h).await?
                && client.batch_execute(&create).await.is_err()
            {
                client.batch_execute(&create).await.map_err(engine)?;
            }
            // IF NOT EXISTS goes by name: a name PostgreSQL cut to 63 bytes may be another
            // relation's (the table's own, for a 63-byte table name), and then no index was made.
            self.check_fence_index(&client).await?;
        }
        let exists = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&quote_identifier(&self.table)],
            )
            .await
            .map_err(engine)?;
        if exists.try_get::<_, bool>(0).map_err(engine)? {
            return Ok(());
        }
        let t = quote_identifier(&self.table);
        let pkey = quote_identifier(&format!("{}_pkey", self.table));
        let idx = quote_identifier(&format!("{}_parent_path_idx", self.table));
        let create = format!(
            "BEGIN; CREATE TABLE IF NOT EXISTS {t} (\
               parent_path TEXT COLLATE \"C\" NOT NULL, \
               path TEXT COLLATE \"C\", \
               key TEXT COLLATE \"C\", \
               value BYTEA, \
               CONSTRAINT {pkey} PRIMARY KEY (path, key)); \
             CREATE INDEX IF NOT EXISTS {idx} ON {t} (parent_path); COMMIT;"
        );
        // Nodes starting together may race on CREATE ... IF NOT EXISTS: one retry settles it.
        if client.batch_execute(&create).await.is_err() {
            client.batch_execute("ROLLBACK").await.map_err(engine)?;
            client.batch_execute(&create).await.map_err(engine)?;
        }
        tracing::info!(storage.table = %self.table, "created the PostgreSQL table");
        Ok(())
    }

    /// Whether the lock table (`table`, quoted) has a unique index on `ha_identity` alone, whatever
    /// its name (not partial, not on an expression): the catalog is asked, not a name.
    async fn fence_index_exists(
        client: &deadpool_postgres::Client,
        table: &str,
    ) -> Result<bool, StorageError> {
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_index i \
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                   WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 \
                     AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'ha_identity')",
                &[&table],
            )
            .await
            .map_err(engine)?;
        row.try_get::<_, bool>(0).map_err(engine)
    }

    /// Fencing is only sound with the unique index on `ha_identity` (a takeover must be a key
    /// update), so its absence stops the start (checked after creating the tables too).
    async fn check_fence_index(
        &self,
        client: &deadpool_postgres::Client,
    ) -> Result<(), StorageError> {
        let Some(ha) = &self.ha_table else {
            return Ok(());
        };
        let idx = quote_identifier(&format!("{ha}_identity_idx"));
        if Self::fence_index_exists(client, &quote_identifier(ha)).await? {
            return Ok(());
        }
        Err(StorageError::other(format!(
            "postgresql: HA needs a unique index on {h}(ha_identity) for write fencing; create it with \
             CREATE UNIQUE INDEX {idx} ON {h} (ha_identity), or let Coffer create its tables (skip_create_table = false)",
            h = quote_identifier(ha)
        )))
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StorageError> {
        self.pool.get().await.map_err(engine)
    }

    /// The HA fence, when the engine was opened with a lock table.
    pub fn fence(&self) -> Option<Arc<Fence>> {
        self.fence.clone()
    }

    /// The HA lock over this engine's lock table, on its own connection to the same database.
    pub fn lock(&self, timings: super::pg_lock::LockTimings) -> Option<super::pg_lock::PgLock> {
        let table = self.ha_table.as_deref()?;
        Some(super::pg_lock::PgLock::new(
            self.config.clone(),
            self.connector.clone(),
            table,
            timings,
        ))
    }

    /// Full keys under `prefix` in byte order, at most `limit`.
    async fn keys_under(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        // Only rows whose folder starts with the prefix's folder part can match.
        let folder = match prefix.rfind('/') {
            Some(i) => format!("/{}", prefix.get(..=i).unwrap_or_default()),
            None => "/".to_owned(),
        };
        let end = folder_end(&folder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.sql.scan)
            .await
            .map_err(engine)?;
        let rows = client
            .query(&stmt, &[&prefix, &folder, &end, &limit])
            .await
            .map_err(engine)?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(engine))
            .collect()
    }
}

#[async_trait::async_trait]
impl PhysicalBackend for PostgresqlBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timed = telemetry::Timer::start(&TIMER, telemetry::POSTGRES_GET);
        let (_, path, k) = split_key(key);
        let client = self.client().await?;
        let stmt = client.prepare_cached(&self.sql.get).await.map_err(engine)?;
        let row = client
            .query_opt(&stmt, &[&path, &k])
            .await
            .map_err(engine)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let value: Option<Vec<u8>> = row.try_get(0).map_err(engine)?;
                Ok(Some(value.unwrap_or_default()))
            }
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timed = telemetry::Timer::start(&TIMER, telemetry::POSTGRES_PUT);
        self.writer
            .submit(vec![WriteOp::Put(key.to_owned(), value)])
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timed = telemetry::Timer::start(&TIMER, telemetry::POSTGRES_DELETE);
        self.writer
            .submit(vec![WriteOp::Delete(key.to_owned())])
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timed = telemetry::Timer::start(&TIMER, telemetry::POSTGRES_LIST);
        if !prefix.is_empty() && !prefix.ends_with('/') {
            // Not a folder: reduce the full keys that start with it.
            let keys = self.keys_under(prefix, usize::MAX).await?;
            return Ok(children(prefix, keys.iter().map(String::as_str)));
        }
        let folder = format!("/{prefix}");
        let end = folder_end(&folder);
        let client = self.client().await?;
        let keys_stmt = client
            .prepare_cached(&self.sql.list_keys)
            .await
            .map_err(engine)?;
        let folders_stmt = client
            .prepare_cached(&self.sql.list_folders)
            .await
            .map_err(engine)?;
        let mut out = Vec::new();
        for row in client.query(&keys_stmt, &[&folder]).await.map_err(engine)? {
            out.push(row.try_get::<_, String>(0).map_err(engine)?);
        }
        for row in client
            .query(&folders_stmt, &[&folder, &end])
            .await
            .map_err(engine)?
        {
            let segment: String = row.try_get(0).map_err(engine)?;
            out.push(format!("{segment}/"));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.writer.submit(ops).await
    }

    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.keys_under(prefix, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_as_in_vault() {
        let s = |k: &str| {
            let (a, b, c) = split_key(k);
            (a, b, c)
        };
        let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(s("a"), t("", "/", "a"));
        assert_eq!(s("a/b"), t("/", "/a/", "b"));
        assert_eq!(s("a/b/c"), t("/a/", "/a/b/", "c"));
        assert_eq!(s("a/b/c/d"), t("/a/b/", "/a/b/c/", "d"));
        assert_eq!(folder_end("/"), "0");
        assert_eq!(folder_end("/a_b/"), "/a_b0");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("vault_kv_store"), "\"vault_kv_store\"");
        assert_eq!(quote_identifier("my.\"t"), "\"my.\"\"t\"");
    }
}
