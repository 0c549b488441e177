//! Writes of the PostgreSQL engine, with group commit.
//!
//! Every write — a put, a delete or an atomic batch — is queued; up to [`FLUSHERS`] background
//! flushers take whatever is queued (in arrival order, up to [`MAX_OPS`] operations) and commit
//! it as **one** fenced statement (`postgresql.rs`), then answer every caller. Under load the
//! commit latency of PostgreSQL is paid once per group instead of once per write; alone, a write
//! is flushed at once. Merging keeps each submission atomic (the whole statement is), and the
//! last operation on a key wins, as if the submissions had run one after the other. When a
//! merged statement fails for another reason than fencing, each submission is retried on its
//! own, so one bad write never fails the others. Flushers run as spawned tasks: a caller that
//! goes away (client disconnect) cannot strand the others' writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::postgresql::{Fence, engine, split_key};
use super::{StorageError, WriteOp};

/// Statements committing at once (each a group).
const FLUSHERS: usize = 4;
/// Operations merged into one statement at most.
const MAX_OPS: usize = 1024;

/// The fenced write statements (see `postgresql.rs`).
pub(super) struct WriteSql {
    /// One put: `$1..` parent, path, key, value.
    pub put: String,
    /// One delete: path, key.
    pub delete: String,
    /// Deletes then puts of distinct keys, as arrays.
    pub batch: String,
}

struct Pending {
    ops: Vec<WriteOp>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

struct Inner {
    pool: Pool,
    sql: WriteSql,
    fence: Option<Arc<Fence>>,
    queue: Mutex<Vec<Pending>>,
    flushers: Arc<Semaphore>,
}

/// The engine's writer (cheap to clone).
#[derive(Clone)]
pub(super) struct Writer(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Writer {
    pub(super) fn new(pool: Pool, sql: WriteSql, fence: Option<Arc<Fence>>) -> Self {
        Writer(Arc::new(Inner {
            pool,
            sql,
            fence,
            queue: Mutex::new(Vec::new()),
            flushers: Arc::new(Semaphore::new(FLUSHERS)),
        }))
    }

    /// Commits `ops` atomically (possibly together with other callers' writes).
    pub(super) async fn submit(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        lock(&self.0.queue).push(Pending { ops, done });
        self.kick();
        answer
            .await
            .unwrap_or_else(|_| Err(StorageError::other("postgresql: write abandoned")))
    }

    /// Starts a flusher if one may run.
    fn kick(&self) {
        if let Ok(permit) = self.0.flushers.clone().try_acquire_owned() {
            let me = self.clone();
            tokio::spawn(async move { me.drain(permit).await });
        }
    }

    async fn drain(self, permit: OwnedSemaphorePermit) {
        loop {
            let group = {
                let mut queue = lock(&self.0.queue);
                let mut n = 0;
                let mut take = 0;
                for p in queue.iter() {
                    if take > 0 && n + p.ops.len() > MAX_OPS {
                        break;
                    }
                    n += p.ops.len();
                    take += 1;
                }
                queue.drain(..take).collect::<Vec<_>>()
            };
            if group.is_empty() {
                break;
            }
            self.flush(group).await;
        }
        drop(permit);
        // Whatever arrived after the queue looked empty: whoever releases last picks it up.
        if !lock(&self.0.queue).is_empty() {
            self.kick();
        }
    }

    async fn flush(&self, group: Vec<Pending>) {
        if let [one] = group.as_slice() {
            let result = self.write(&one.ops.iter().collect::<Vec<_>>()).await;
            if let Some(p) = group.into_iter().next() {
                let _ = p.done.send(result);
            }
            return;
        }
        let all: Vec<&WriteOp> = group.iter().flat_map(|p| p.ops.iter()).collect();
        match self.write(&all).await {
            Ok(()) => {
                for p in group {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(StorageError::Fenced) => {
                for p in group {
                    let _ = p.done.send(Err(StorageError::Fenced));
                }
            }
            Err(_) => {
                for p in group {
                    let result = self.write(&p.ops.iter().collect::<Vec<_>>()).await;
                    let _ = p.done.send(result);
                }
            }
        }
    }

    /// Commits `ops` as one fenced statement.
    async fn write(&self, ops: &[&WriteOp]) -> Result<(), StorageError> {
        match ops {
            [WriteOp::Put(key, value)] => {
                let (parent, path, k) = split_key(key);
                self.execute(&self.0.sql.put, &[&parent, &path, &k, value])
                    .await
            }
            [WriteOp::Delete(key)] => {
                let (_, path, k) = split_key(key);
                self.execute(&self.0.sql.delete, &[&path, &k]).await
            }
            _ => {
                // The last operation on each key decides; puts and deletes then touch distinct
                // rows, as one statement needs.
                let mut last: HashMap<&str, Option<&[u8]>> = HashMap::new();
                for op in ops {
                    match op {
                        WriteOp::Put(key, value) => last.insert(key, Some(value.as_slice())),
                        WriteOp::Delete(key) => last.insert(key, None),
                    };
                }
                let (mut del_path, mut del_key) = (Vec::new(), Vec::new());
                let (mut parents, mut paths, mut keys, mut values) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (key, value) in last {
                    let (parent, path, k) = split_key(key);
                    match value {
                        None => {
                            del_path.push(path);
                            del_key.push(k);
                        }
                        Some(v) => {
                            parents.push(parent);
                            paths.push(path);
                            keys.push(k);
                            values.push(v);
                        }
                    }
                }
                self.execute(
                    &self.0.sql.batch,
                    &[&del_path, &del_key, &parents, &paths, &keys, &values],
                )
                .await
            }
        }
    }

    /// Runs a write statement whose parameters follow the fence's (`$1` lock key, `$2` our
    /// identity, when fenced); fails with [`StorageError::Fenced`] when the lock row did not
    /// match, in which case nothing was written.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), StorageError> {
        let identity = match &self.0.fence {
            None => None,
            Some(fence) => Some(fence.identity().ok_or(StorageError::Fenced)?),
        };
        let key = super::pg_lock::LOCK_KEY;
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(id) = &identity {
            all.push(&key);
            all.push(id.as_ref());
        }
        all.extend_from_slice(params);
        let client = self.0.pool.get().await.map_err(engine)?;
        let stmt = client.prepare_cached(sql).await.map_err(engine)?;
        let row = client.query_one(&stmt, &all).await.map_err(engine)?;
        let matched: i64 = row.try_get(0).map_err(engine)?;
        if matched == 0 {
            if let (Some(fence), Some(id)) = (&self.0.fence, &identity) {
                fence.refused(id);
            }
            return Err(StorageError::Fenced);
        }
        Ok(())
    }
}
