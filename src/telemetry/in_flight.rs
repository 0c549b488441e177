//! The requests a core is serving now (`sys/in-flight-req`, `vault debug`'s `requests.json`):
//! when each started, from where, which method and path.
//!
//! Every request enters the table when it arrives and leaves when its answer is ready, so the
//! cost per request is kept small: a reference-counted copy of the URI and one lock of the
//! calling thread's own shard (one of eight, each on its own cache line, so runtime workers do
//! not contend or pass cache lines around) on the way in and out, taking or freeing a slot of
//! that shard's slab (no hashing; the start is the `Instant` the caller already took, turned
//! into wall time only when listed). The
//! path is rendered only when the table is listed, by the caller's function (the HTTP layer's
//! log form, which hides anything after `auth/token/<op>/`, where old clients put tokens).
//!
//! An entry's id is a UUID-shaped string made of a per-table random prefix and the counter,
//! unique for the table's life (Vault keys its table by a fresh UUID per request too; it is not
//! the request id).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime};

const SHARDS: usize = 8;

/// One request being served.
struct Entry {
    /// Unique in the table: the shard's sequence number times [`SHARDS`] plus the shard.
    id: u64,
    start: Instant,
    method: &'static str,
    uri: axum::http::Uri,
    remote: Option<SocketAddr>,
}

/// The in-flight requests of one core.
pub struct InFlightTable {
    prefix: u64,
    shards: [Shard; SHARDS],
}

/// A shard on a cache line of its own.
#[repr(align(64))]
#[derive(Default)]
struct Shard(Mutex<Slab>);

/// A shard's entries: slots reused through a free list.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    used: usize,
    /// Entries this shard has taken so far (for their ids).
    taken: u64,
}

/// Shards handed to threads in turn.
static NEXT_SHARD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The shard this thread's requests use.
    static MY_SHARD: usize =
        usize::try_from(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS as u64).unwrap_or(0);
}

impl Slab {
    fn insert(&mut self, mut e: Entry, shard: usize) -> usize {
        e.id = self.taken * SHARDS as u64 + shard as u64;
        self.taken += 1;
        self.used += 1;
        if let Some(i) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(i)
        {
            *slot = Some(e);
            return i;
        }
        self.slots.push(Some(e));
        self.slots.len() - 1
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i)
            && slot.take().is_some()
        {
            self.used -= 1;
            self.free.push(i);
        }
    }
}

impl Default for InFlightTable {
    fn default() -> Self {
        InFlightTable {
            prefix: rand::random(),
            shards: std::array::from_fn(|_| Shard::default()),
        }
    }
}

/// A request's place in the table; leaving it removes the entry.
pub struct Entered<'a> {
    shard: Option<&'a Mutex<Slab>>,
    slot: usize,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(shard) = self.shard {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(self.slot);
        }
    }
}

/// One row of the listing, as Vault's JSON has it.
#[derive(Debug, serde::Serialize)]
pub struct InFlightRow {
    /// RFC 3339 with nanoseconds, UTC.
    pub start_time: String,
    /// `ip:port` of the client (empty when unknown).
    pub client_remote_address: String,
    /// The path as the server logs it (`/v1/...`).
    pub request_path: String,
    /// `GET`, `PUT`, ...
    pub request_method: &'static str,
    /// Vault fills this in once the token is known; Coffer does not track it per request.
    pub client_id: &'static str,
}

impl InFlightTable {
    /// Records a request that arrived at `start`.
    pub fn enter(
        &self,
        start: Instant,
        method: &'static str,
        uri: &axum::http::Uri,
        remote: Option<SocketAddr>,
    ) -> Entered<'_> {
        let entry = Entry {
            id: 0,
            start,
            method,
            uri: uri.clone(),
            remote,
        };
        let i = MY_SHARD.with(|s| *s);
        let shard = self.shards.get(i).map(|s| &s.0);
        let slot = shard.map_or(0, |s| {
            s.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(entry, i)
        });
        Entered { shard, slot }
    }

    /// Every request in flight now, keyed by its entry id; `path` renders a request's path.
    pub fn snapshot(&self, path: impl Fn(&str) -> String) -> BTreeMap<String, InFlightRow> {
        let mut out = BTreeMap::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for shard in &self.shards {
            let shard = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
            for e in shard.slots.iter().flatten() {
                let start = wall
                    .checked_sub(now.saturating_duration_since(e.start))
                    .unwrap_or(wall);
                out.insert(
                    self.key(e.id),
                    InFlightRow {
                        start_time: crate::clock::rfc3339_nanos(start),
                        client_remote_address: e.remote.map(|a| a.to_string()).unwrap_or_default(),
                        request_path: path(e.uri.path()),
                        request_method: e.method,
                        client_id: "",
                    },
                );
            }
        }
        out
    }

    /// Number of requests in flight.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).used)
            .sum()
    }

    /// True when no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The UUID-shaped id of entry `id`.
    fn key(&self, id: u64) -> String {
        super::host::as_uuid(&format!("{:016x}{id:016x}", self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_with_their_guard_and_keys_are_distinct_uuid_shapes() {
        let t = InFlightTable::default();
        let uri: axum::http::Uri = "/v1/secret/data/x?version=2".parse().unwrap();
        let a = t.enter(Instant::now(), "GET", &uri, "127.0.0.1:4000".parse().ok());
        let b = t.enter(Instant::now(), "PUT", &uri, None);
        let rows = t.snapshot(|p| format!("<{p}>"));
        assert_eq!(rows.len(), 2);
        for (k, row) in &rows {
            assert_eq!(k.len(), 36, "{k}");
            assert_eq!(k.matches('-').count(), 4, "{k}");
            assert_eq!(row.request_path, "</v1/secret/data/x>");
        }
        let get = rows.values().find(|r| r.request_method == "GET").unwrap();
        assert_eq!(get.client_remote_address, "127.0.0.1:4000");
        drop(a);
        let rows = t.snapshot(|p| p.to_string());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.values().next().unwrap().request_method, "PUT");
        drop(b);
        assert!(t.is_empty());
        // Freed slots are reused: one after another, 40 requests on one thread take one slot.
        for _ in 0..40 {
            drop(t.enter(Instant::now(), "GET", &uri, None));
        }
        let slots: usize = t
            .shards
            .iter()
            .map(|s| s.0.lock().unwrap().slots.len())
            .sum();
        assert_eq!(slots, 2);
    }
}
