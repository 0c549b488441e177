//! The HA lock on PostgreSQL: one row of Vault's `vault_ha_locks` table (`ha_key = 'core/lock'`),
//! held by whoever wrote its `ha_identity`, until `valid_until` (computed by the database clock).
//!
//! Every statement runs on one dedicated connection outside the data pool, with a statement
//! timeout and a client-side deadline: a saturated pool or a hung database can neither block a
//! renewal nor keep a stale holder believing it is active. A connection that fails or times out
//! is dropped and opened again on the next call.
//!
//! - acquire: insert the row, or take it over only when it has expired (never from a live
//!   holder), and `pg_notify` the standbys; the takeover rewrites `ha_identity`, which a unique index makes a key update, so it
//!   waits for every fenced write of the old holder (they lock the row `FOR KEY SHARE`, see
//!   `postgresql.rs`) and no later one can match;
//! - renew: `UPDATE` of `valid_until` only, by identity (a deleted or stolen row is never
//!   re-created: 0 rows means the lock is lost);
//! - release: `DELETE` by identity and `pg_notify` so standbys waiting on `LISTEN` wake at once;
//! - leader: a lock-free read of the row;
//! - members (`sys/ha-status`): every unsealed node keeps a row of its own under
//!   `core/member/<node id>` (identity `member:<node id>`, its address and version as JSON in
//!   `ha_value`, `valid_until` one lease ahead), written on a second connection so it never
//!   waits behind a renewal. The lock statements all name `core/lock`, so these rows take no
//!   part in the election or the fence; rows of nodes gone for ten minutes are removed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client};

use super::StorageError;
use super::pg_tls::RustlsConnector;
use super::postgresql::quote_identifier;

/// The lock's key, as in Vault.
pub const LOCK_KEY: &str = "core/lock";

/// Lease, renewal and acquisition-poll intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTimings {
    /// How long a lease lasts after each acquisition or renewal (`ha_lock_ttl`).
    pub ttl: Duration,
    /// How often the holder renews (`ha_lock_renew_interval`).
    pub renew: Duration,
    /// How often a standby checks the lock when nothing wakes it (`ha_lock_retry_interval`).
    pub retry: Duration,
}

impl Default for LockTimings {
    /// Coffer's defaults: 8 s lease, renewed every 2 s, polled every 500 ms (Vault: 15/5/1 s).
    fn default() -> Self {
        LockTimings {
            ttl: Duration::from_secs(8),
            renew: Duration::from_secs(2),
            retry: Duration::from_millis(500),
        }
    }
}

impl LockTimings {
    /// The longest any single lock statement may take: a renewal slower than this is useless.
    pub fn op_timeout(&self) -> Duration {
        self.renew.min(self.ttl / 3).max(Duration::from_millis(100))
    }

    /// How long before its lease ends the holder stops serving unless a renewal succeeded:
    /// 2 s, or a quarter of the lease when it is short.
    pub fn safety_margin(&self) -> Duration {
        Duration::from_secs(2).min(self.ttl / 4)
    }
}

/// The row as a standby sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's `ha_identity`.
    pub identity: String,
    /// The holder's `ha_value`: its advertised API address.
    pub value: String,
    /// Whether the lease is still running (by the database clock).
    pub live: bool,
}

fn engine(e: impl std::error::Error) -> StorageError {
    failed(super::postgresql::error_chain(&e))
}

fn failed(what: impl std::fmt::Display) -> StorageError {
    StorageError::other(format!("postgresql lock: {what}"))
}

struct Sql {
    acquire: String,
    renew: String,
    release: String,
    holder: String,
    listen: String,
    member_put: String,
    member_remove: String,
    members: String,
}

/// Key prefix of the member rows.
const MEMBER_PREFIX: &str = "core/member/";

/// A node's member row, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    /// The node's id (the key after [`MEMBER_PREFIX`]).
    pub node: String,
    /// What the node wrote (JSON).
    pub value: String,
    /// When it last wrote the row (Unix seconds, database clock).
    pub echoed: f64,
    /// Whether the row is still within its lease.
    pub live: bool,
}

/// The lock (one per node).
pub struct PgLock {
    table: String,
    config: tokio_postgres::Config,
    tls: RustlsConnector,
    sql: Sql,
    channel: String,
    timings: LockTimings,
    client: Mutex<Option<Client>>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLock")
            .field("channel", &self.channel)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

/// The `LISTEN`/`NOTIFY` channel of a lock table: its name, cut to PostgreSQL's 63 bytes.
fn channel_name(table: &str) -> String {
    let mut name = format!("coffer_ha:{table}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

impl PgLock {
    /// A lock over `table` reached with `config` (no connection is opened yet).
    pub fn new(
        config: tokio_postgres::Config,
        tls: RustlsConnector,
        table: &str,
        timings: LockTimings,
    ) -> Self {
        let t = quote_identifier(table);
        let channel = channel_name(table);
        PgLock {
            table: table.to_owned(),
            config,
            tls,
            sql: Sql {
                // A new holder wakes the standbys too, so they learn where to forward at once.
                acquire: format!(
                    "WITH a AS (INSERT INTO {t} (ha_key, ha_identity, ha_value, valid_until) \
                     VALUES ($1, $2, $3, clock_timestamp() + $4::float8 * interval '1 second') \
                     ON CONFLICT (ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, \
                     ha_value = EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until \
                     WHERE {t}.valid_until < clock_timestamp() RETURNING 1) \
                     SELECT pg_notify($5, '') FROM a"
                ),
                renew: format!(
                    "UPDATE {t} SET valid_until = clock_timestamp() + $3::float8 * interval '1 second' \
                     WHERE ha_key = $1 AND ha_identity = $2 RETURNING 1"
                ),
                release: format!(
                    "WITH d AS (DELETE FROM {t} WHERE ha_key = $1 AND ha_identity = $2 RETURNING 1) \
                     SELECT pg_notify($3, '') FROM d"
                ),
                holder: format!(
                    "SELECT ha_identity, coalesce(ha_value, ''), valid_until > clock_timestamp() \
                     FROM {t} WHERE ha_key = $1"
                ),
                listen: format!("LISTEN {}", quote_identifier(&channel)),
                member_put: format!(
                    "INSERT INTO {t} (ha_key, ha_identity, ha_value, valid_until) \
                     VALUES ($1, $2, $3, clock_timestamp() + $4::float8 * interval '1 second') \
                     ON CONFLICT (ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, \
                     ha_value = EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until"
                ),
                member_remove: format!("DELETE FROM {t} WHERE ha_key = $1"),
                members: format!(
                    "WITH gone AS (DELETE FROM {t} WHERE ha_key LIKE '{MEMBER_PREFIX}%' \
                     AND valid_until < clock_timestamp() - interval '10 minutes') \
                     SELECT substr(ha_key, {from}), coalesce(ha_value, ''), \
                     extract(epoch FROM valid_until - $1::float8 * interval '1 second')::float8, \
                     valid_until > clock_timestamp() \
                     FROM {t} WHERE ha_key LIKE '{MEMBER_PREFIX}%'",
                    from = MEMBER_PREFIX.len() + 1
                ),
            },
            channel,
            timings,
            client: Mutex::new(None),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The timings.
    pub fn timings(&self) -> LockTimings {
        self.timings
    }

    /// The same lock table on a connection of its own (for the member rows).
    pub fn another(&self) -> PgLock {
        PgLock::new(
            self.config.clone(),
            self.tls.clone(),
            &self.table,
            self.timings,
        )
    }

    /// Writes node `node`'s member row, live for one lease.
    pub async fn put_member(&self, node: &str, value: &str) -> Result<(), StorageError> {
        let key = format!("{MEMBER_PREFIX}{node}");
        let identity = format!("member:{node}");
        let ttl = self.timings.ttl.as_secs_f64();
        self.query(&self.sql.member_put, &[&key, &identity, &value, &ttl])
            .await?;
        Ok(())
    }

    /// Removes node `node`'s member row (it is shutting down).
    pub async fn remove_member(&self, node: &str) -> Result<(), StorageError> {
        let key = format!("{MEMBER_PREFIX}{node}");
        self.query(&self.sql.member_remove, &[&key]).await?;
        Ok(())
    }

    /// Every member row (removing those gone for ten minutes).
    pub async fn members(&self) -> Result<Vec<MemberRow>, StorageError> {
        let ttl = self.timings.ttl.as_secs_f64();
        let rows = self.query(&self.sql.members, &[&ttl]).await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    node: r.try_get(0).map_err(engine)?,
                    value: r.try_get(1).map_err(engine)?,
                    echoed: r.try_get(2).map_err(engine)?,
                    live: r.try_get(3).map_err(engine)?,
                })
            })
            .collect()
    }

    /// Woken when a holder releases the lock (a `NOTIFY` on this table's channel).
    pub fn wakeups(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Opens the dedicated connection: statement timeout, `LISTEN`.
    async fn connect(&self) -> Result<Client, StorageError> {
        let (client, mut connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(engine)?;
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        });
        let ms = self.timings.op_timeout().as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
                 SET idle_in_transaction_session_timeout = {ms}; {}",
                self.sql.listen
            ))
            .await
            .map_err(engine)?;
        Ok(client)
    }

    /// Runs one statement on the lock connection (opened if needed) within the operation
    /// deadline; on any failure the connection is dropped, so the next call starts afresh.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StorageError> {
        let deadline = self.timings.op_timeout();
        let mut slot = self.client.lock().await;
        if slot.is_none() {
            // Opening a connection may take longer than one statement may (a loaded machine,
            // TLS); it is bounded by the lease, and the holder's deadline covers the wait.
            match tokio::time::timeout(self.timings.ttl, self.connect()).await {
                Ok(Ok(client)) => *slot = Some(client),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(failed("connecting timed out")),
            }
        }
        let attempt = async {
            match slot.as_ref() {
                Some(client) => client.query(sql, params).await.map_err(engine),
                None => Err(failed("no connection")),
            }
        };
        let result = match tokio::time::timeout(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(failed(format!("no answer within {deadline:?}"))),
        };
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Takes the lock for `identity` (advertising `value`) if it is free or expired.
    pub async fn try_acquire(&self, identity: &str, value: &str) -> Result<bool, StorageError> {
        let ttl = self.timings.ttl.as_secs_f64();
        let rows = self
            .query(
                &self.sql.acquire,
                &[&LOCK_KEY, &identity, &value, &ttl, &self.channel],
            )
            .await?;
        Ok(rows.len() == 1)
    }

    /// Extends the lease of `identity`; `false` when the row is no longer ours (or gone).
    pub async fn renew(&self, identity: &str) -> Result<bool, StorageError> {
        let ttl = self.timings.ttl.as_secs_f64();
        let rows = self
            .query(&self.sql.renew, &[&LOCK_KEY, &identity, &ttl])
            .await?;
        Ok(rows.len() == 1)
    }

    /// Deletes the row if `identity` still holds it, and wakes the standbys.
    pub async fn release(&self, identity: &str) -> Result<(), StorageError> {
        self.query(&self.sql.release, &[&LOCK_KEY, &identity, &self.channel])
            .await?;
        Ok(())
    }

    /// The row, if any.
    pub async fn holder(&self) -> Result<Option<Holder>, StorageError> {
        let rows = self.query(&self.sql.holder, &[&LOCK_KEY]).await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Holder {
            identity: r.try_get(0).map_err(engine)?,
            value: r.try_get(1).map_err(engine)?,
            live: r.try_get(2).map_err(engine)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_postgresql() {
        assert_eq!(channel_name("vault_ha_locks"), "coffer_ha:vault_ha_locks");
        assert_eq!(channel_name(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn timings_leave_room() {
        let d = LockTimings::default();
        assert_eq!(d.op_timeout(), Duration::from_secs(2));
        assert_eq!(d.safety_margin(), Duration::from_secs(2));
        let short = LockTimings {
            ttl: Duration::from_secs(2),
            renew: Duration::from_millis(500),
            retry: Duration::from_millis(200),
        };
        assert_eq!(short.safety_margin(), Duration::from_millis(500));
        assert_eq!(short.op_timeout(), Duration::from_millis(500));
    }
}
