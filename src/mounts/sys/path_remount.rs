//! `sys/remount` (`bao secrets move`, `bao auth move`) and `sys/remount/status/<migration_id>`.
//!
//! OpenBao moves a mount asynchronously and hands back a migration id that the CLI polls. Coffer's
//! move is one table swap, so it is finished when the POST answers; the status endpoint still
//! serves the record the CLI asks for. Records are kept in memory only (as OpenBao keeps them),
//! bounded to the most recent `MAX_RECORDS`.

use serde_json::json;
use std::collections::VecDeque;

use super::SystemBackend;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

/// How many finished moves the status endpoint remembers.
const MAX_RECORDS: usize = 1000;

/// Secret-engine paths that can neither be moved nor be moved into.
const PROTECTED_MOUNTS: [&str; 5] = ["audit/", "auth/", "sys/", "cubbyhole/", "identity/"];
/// Auth paths that can neither be moved nor be moved into.
const PROTECTED_AUTHS: [&str; 1] = ["auth/token/"];

/// One finished move.
pub(super) struct Migration {
    id: String,
    source: String,
    target: String,
}

/// The in-memory record of recent moves.
#[derive(Default)]
pub(super) struct Migrations(std::sync::Mutex<VecDeque<Migration>>);

impl Migrations {
    fn push(&self, m: Migration) {
        let mut q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() >= MAX_RECORDS {
            q.pop_front();
        }
        q.push_back(m);
    }

    fn get(&self, id: &str) -> Option<(String, String)> {
        let q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.iter()
            .find(|m| m.id == id)
            .map(|m| (m.source.clone(), m.target.clone()))
    }
}

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("remount$")
            .field("from", T::Str, "The previous mount point.")
            .field("to", T::Str, "The new mount point.")
            .field("config", T::Map, "Ignored (accepted for compatibility).")
            .on(Op::Update, |b, r, d| Box::pin(b.remount(r, d)))
            .help("Move a mounted secrets engine or auth method to a new path."),
        P::new("remount/status/(?P<migration_id>.+?)$")
            .field("migration_id", T::Str, "The id returned by sys/remount.")
            .on(Op::Read, |b, r, d| Box::pin(b.remount_status(r, d)))
            .help("Check the status of a mount move."),
    ]
}

/// `a`, `/a/`, `a/` → `a/` (Vault's `sanitizePath`).
fn sanitize(p: &str) -> String {
    format!("{}/", p.trim_matches('/'))
}

/// The checks OpenBao's handler runs before it looks at the mount table, in its order.
fn check_paths(from: &str, to: &str) -> Result<()> {
    if to.chars().any(char::is_control) {
        return Err(Error::bad(
            "invalid destination mount: path cannot contain non-printable characters",
        ));
    }
    if to
        .trim_end_matches('/')
        .split('/')
        .any(|s| s == "." || s == "..")
    {
        return Err(Error::bad(
            "invalid destination mount: relative paths not supported",
        ));
    }
    if from.starts_with("auth/") {
        if !to.starts_with("auth/") {
            return Err(Error::bad(format!(
                "cannot remount auth mount to non-auth mount {to:?}"
            )));
        }
        if PROTECTED_AUTHS.iter().any(|p| from.starts_with(p)) {
            return Err(Error::bad(format!("cannot remount {from:?}")));
        }
        if PROTECTED_AUTHS.iter().any(|p| to.starts_with(p)) {
            return Err(Error::bad(format!("cannot remount to destination {to:?}")));
        }
    } else {
        for p in PROTECTED_MOUNTS {
            if from.starts_with(p) {
                return Err(Error::bad(format!("cannot remount {from:?}")));
            }
            if to.starts_with(p) {
                // OpenBao prints this one without quotes.
                return Err(Error::bad(format!("cannot remount to destination {to}")));
            }
        }
    }
    Ok(())
}

impl SystemBackend {
    async fn remount(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let from = d.get_str("from")?.unwrap_or_default();
        let to = d.get_str("to")?.unwrap_or_default();
        if from.is_empty() || to.is_empty() {
            return Err(Error::bad(
                "both 'from' and 'to' path must be specified as a string",
            ));
        }
        let (from, to) = (sanitize(&from), sanitize(&to));
        check_paths(&from, &to)?;
        self.core()?.remount(&from, &to).await?;
        let id = crate::ids::uuid_v4();
        tracing::info!(mount.from = %from, mount.to = %to, migration_id = %id, "moved mount from {from} to {to}");
        self.migrations.push(Migration {
            id: id.clone(),
            source: from,
            target: to,
        });
        let mut resp = Response::json(json!({ "migration_id": id }));
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    async fn remount_status(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let id = d.get_str("migration_id")?.unwrap_or_default();
        let Some((source, target)) = self.migrations.get(&id) else {
            return Ok(None);
        };
        Ok(Some(Response::json(json!({
            "migration_id": id,
            "migration_info": {
                "source_mount": source,
                "target_mount": target,
                "status": "success",
            },
        }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_follow_openbao_order_and_text() {
        for (from, to, want) in [
            ("sys/", "sys/x/", "cannot remount \"sys/\""),
            ("nope/", "sys/x/", "cannot remount to destination sys/x/"),
            ("a/", "auth/a/", "cannot remount to destination auth/a/"),
            ("a/", "audit/", "cannot remount to destination audit/"),
            ("cubbyhole/", "x/", "cannot remount \"cubbyhole/\""),
            ("identity/", "x/", "cannot remount \"identity/\""),
            (
                "auth/ap/",
                "ap2/",
                "cannot remount auth mount to non-auth mount \"ap2/\"",
            ),
            ("auth/token/", "auth/t2/", "cannot remount \"auth/token/\""),
            (
                "auth/ap/",
                "auth/token/x/",
                "cannot remount to destination \"auth/token/x/\"",
            ),
            (
                "a/",
                "x\u{1}/",
                "invalid destination mount: path cannot contain non-printable characters",
            ),
            (
                "a/",
                "../x/",
                "invalid destination mount: relative paths not supported",
            ),
        ] {
            let err = check_paths(from, to).unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest(m) if m == want),
                "{from} -> {to}: {err:?}"
            );
        }
        assert!(check_paths("a/", "b/c/").is_ok());
        assert!(check_paths("auth/a/", "auth/b/").is_ok());
        assert!(check_paths("sysx/", "cubbyholes/").is_ok());
    }

    #[test]
    fn records_are_bounded() {
        let m = Migrations::default();
        for i in 0..=MAX_RECORDS {
            m.push(Migration {
                id: i.to_string(),
                source: "a/".into(),
                target: "b/".into(),
            });
        }
        assert!(m.get("0").is_none());
        assert_eq!(m.get("1").unwrap().1, "b/");
    }
}
