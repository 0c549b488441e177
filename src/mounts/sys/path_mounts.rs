//! `sys/mounts` and `sys/auth`: listing, enabling, disabling and tuning mounts.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::SystemBackend;
use crate::core::mounts::{MountConfig, MountEntry, MountTableKind, new_accessor};
use crate::error::{Error, Result};
use crate::logical::field::parse_duration_seconds;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    let mount_fields = |p: PathSpec<SystemBackend>| {
        p.field("path", T::Str, "Mount path.")
            .field("type", T::Str, "Backend type.")
            .field("description", T::Str, "Description.")
            .field("config", T::Map, "Mount configuration.")
            .field("options", T::Map, "Engine options.")
            .field("local", T::Bool, "Local mount.")
            .field("seal_wrap", T::Bool, "Seal wrapping.")
            .field("external_entropy_access", T::Bool, "External entropy.")
            .field("plugin_name", T::Str, "Deprecated plugin name.")
            .field("plugin_version", T::Str, "Plugin version.")
    };
    let tune_fields = |p: PathSpec<SystemBackend>| {
        p.field("path", T::Str, "Mount path.")
            .field("default_lease_ttl", T::Str, "Default TTL.")
            .field("max_lease_ttl", T::Str, "Max TTL.")
            .field("description", T::Str, "Description.")
            .field("options", T::Map, "Engine options.")
            .field("listing_visibility", T::Str, "UI listing visibility.")
            .field("token_type", T::Str, "Token type for auth mounts.")
            .field("force_no_cache", T::Bool, "No cache.")
            .field(
                "audit_non_hmac_request_keys",
                T::CommaStringSlice,
                "Request data keys the audit devices do not HMAC.",
            )
            .field(
                "audit_non_hmac_response_keys",
                T::CommaStringSlice,
                "Response data keys the audit devices do not HMAC.",
            )
    };
    // sys/mounts and sys/auth have the same shape; handlers tell them apart by the path.
    let mut out = Vec::new();
    for table in ["mounts", "auth"] {
        out.push(P::new(&format!("{table}$")).on(Op::Read, |b, r, d| {
            Box::pin(b.mounts_list(r, d, table_of(r)))
        }));
        out.push(
            tune_fields(P::new(&format!("{table}/(?P<path>.+?)/tune$")))
                .on(Op::Read, |b, r, d| {
                    Box::pin(b.mount_tune_read(r, d, table_of(r)))
                })
                .on(Op::Update, |b, r, d| {
                    Box::pin(b.mount_tune_write(r, d, table_of(r)))
                }),
        );
        out.push(
            mount_fields(P::new(&format!("{table}/(?P<path>.+)$")))
                .on(Op::Read, |b, r, d| {
                    Box::pin(b.mount_read(r, d, table_of(r)))
                })
                .on(Op::Update, |b, r, d| {
                    Box::pin(b.mount_enable(r, d, table_of(r)))
                })
                .on(Op::Delete, |b, r, d| {
                    Box::pin(b.mount_disable(r, d, table_of(r)))
                }),
        );
    }
    out
}

/// Which table a `sys/mounts…` or `sys/auth…` request is about.
fn table_of(req: &Request) -> MountTableKind {
    if req.path.starts_with("auth") {
        MountTableKind::Auth
    } else {
        MountTableKind::Secret
    }
}

/// `foo`, `foo/`, `/foo/` → `foo/`. A `.` or `..` segment is refused as OpenBao refuses it, and
/// so is a control character (OpenBao's HTTP layer never lets one through), so that no mount can
/// be named in a way that another layer would read as a different path.
fn clean_path(p: &str) -> Result<String> {
    let p = p.trim_matches('/');
    if p.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::bad("relative paths not supported"));
    }
    if p.chars().any(char::is_control) {
        return Err(Error::bad("mount path contains non-printable characters"));
    }
    Ok(format!("{p}/"))
}

fn api_path(table: MountTableKind, path: &str) -> String {
    match table {
        MountTableKind::Secret => path.to_string(),
        MountTableKind::Auth => format!("auth/{path}"),
    }
}

fn duration_value(name: &str, v: &Value) -> Result<i64> {
    let secs = match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) if s == "system" => 0,
        Value::String(s) => parse_duration_seconds(s).map_err(Error::bad)?,
        Value::Null => 0,
        _ => return Err(Error::bad(format!("invalid {name}"))),
    };
    if secs < 0 {
        return Err(Error::bad(format!("{name} cannot be negative")));
    }
    Ok(secs)
}

fn string_map(m: &Map<String, Value>) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect()
}

impl SystemBackend {
    async fn mounts_list(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let mut data = Map::new();
        for m in core.mount_table().iter().filter(|m| m.entry.table == table) {
            data.insert(m.entry.path.clone(), m.entry.to_json());
        }
        Ok(Some(Response {
            data: Some(data),
            inject_top_level: true,
            ..Default::default()
        }))
    }

    async fn mount_read(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let path = clean_path(&d.get_str("path")?.unwrap_or_default())?;
        let core = self.core()?;
        let t = core.mount_table();
        let Some(m) = t.get(&api_path(table, &path)) else {
            return Err(Error::bad(match table {
                MountTableKind::Secret => format!("No secret engine mount at {path}"),
                MountTableKind::Auth => format!("No auth engine at {path}"),
            }));
        };
        // Everything under sys/mounts/ and sys/auth/ also carries its data at the top level.
        let mut resp = Response::json(m.entry.to_json());
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    async fn mount_enable(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let mut kind = d.get_str("type")?.unwrap_or_default();
        let raw_path = d.get_str("path")?.unwrap_or_default();
        clean_path(&raw_path)?;
        if kind.is_empty() {
            return Err(Error::bad("backend type must be specified as a string"));
        }
        let path = clean_path(if raw_path.trim_matches('/').is_empty() {
            &kind
        } else {
            &raw_path
        })?;
        if table == MountTableKind::Secret
            && (path.starts_with("auth/")
                || ["sys/", "cubbyhole/", "identity/", "auth/"].contains(&path.as_str()))
        {
            return Err(Error::bad(format!("cannot mount {path:?}")));
        }
        // An engine enabled through the API has options, `{}` when none were given (as in
        // Vault: only the built-in mounts show null).
        let mut options = Some(
            d.get_map("options")?
                .map(|m| string_map(&m))
                .unwrap_or_default(),
        );
        // kv-v1/kv-v2 are aliases of kv with a version option.
        if let Some(v) = kind.strip_prefix("kv-v") {
            options
                .get_or_insert_with(BTreeMap::new)
                .insert("version".into(), v.to_string());
            kind = "kv".into();
        }
        if options.as_ref().is_some_and(|o| o.contains_key("version")) && kind != "kv" {
            return Err(Error::bad(format!(
                "version option is only supported by kv, not {kind:?}"
            )));
        }
        if !crate::mounts::is_mountable(table, &kind) {
            return Err(Error::bad(format!(
                "plugin not found in the catalog: {kind}"
            )));
        }
        // Without a version, kv is version 1 (and its options say nothing, as in Vault).
        if kind == "kv"
            && let Some(v) = options
                .as_ref()
                .and_then(|o| o.get("version"))
                .filter(|v| !["", "1", "2"].contains(&v.as_str()))
        {
            return Err(Error::bad(format!("invalid kv version {v:?}")));
        }
        let mut config = MountConfig::default();
        if let Some(c) = d.get_map("config")? {
            if let Some(v) = c.get("default_lease_ttl") {
                config.default_lease_ttl = duration_value("default_lease_ttl", v)?;
            }
            if let Some(v) = c.get("max_lease_ttl") {
                config.max_lease_ttl = duration_value("max_lease_ttl", v)?;
            }
            config.force_no_cache = c
                .get("force_no_cache")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            config.listing_visibility = c
                .get("listing_visibility")
                .and_then(Value::as_str)
                .map(str::to_string);
            config.audit_non_hmac_request_keys = audit_keys(c.get("audit_non_hmac_request_keys"));
            config.audit_non_hmac_response_keys = audit_keys(c.get("audit_non_hmac_response_keys"));
            if table == MountTableKind::Auth {
                config.token_type = c
                    .get("token_type")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
            }
        }
        validate_enable_ttls(&config, core.config.max_lease_ttl)?;
        let accessor_prefix = match table {
            MountTableKind::Secret => kind.clone(),
            MountTableKind::Auth => format!("auth_{kind}"),
        };
        let entry = MountEntry {
            table,
            path,
            kind: kind.clone(),
            description: d.get_str("description")?.unwrap_or_default(),
            accessor: new_accessor(&accessor_prefix),
            uuid: uuid::Uuid::new_v4().to_string(),
            config,
            options,
            local: d.get_bool("local")?.unwrap_or(false),
            seal_wrap: d.get_bool("seal_wrap")?.unwrap_or(false),
            external_entropy_access: d.get_bool("external_entropy_access")?.unwrap_or(false),
        };
        let (mount_path, mount_kind) = (entry.api_path(), entry.kind.clone());
        core.enable_mount(entry).await?;
        tracing::info!(mount.path = %mount_path, mount.kind = %mount_kind, "enabled {mount_kind} at {mount_path}");
        Ok(None)
    }

    async fn mount_disable(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let path = clean_path(&d.get_str("path")?.unwrap_or_default())?;
        let protected: &[&str] = match table {
            MountTableKind::Secret => &["sys/", "cubbyhole/", "identity/"],
            MountTableKind::Auth => &["token/"],
        };
        if protected.contains(&path.as_str()) {
            return Err(Error::bad(format!(
                "cannot unmount {:?}",
                api_path(table, &path)
            )));
        }
        let core = self.core()?;
        let full = api_path(table, &path);
        if core.disable_mount(&full).await? {
            tracing::info!(mount.path = %full, "disabled mount at {full}");
        }
        Ok(None)
    }

    async fn mount_tune_read(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let path = clean_path(&d.get_str("path")?.unwrap_or_default())?;
        let core = self.core()?;
        let t = core.mount_table();
        let full = api_path(table, &path);
        let Some(m) = t.get(&full) else {
            return Err(Error::bad(format!(
                "cannot fetch sysview for path {full:?}"
            )));
        };
        let (def, max) = core.mount_ttls(&m.entry);
        let mut data = json!({
            "default_lease_ttl": def,
            "max_lease_ttl": max,
            "force_no_cache": m.entry.config.force_no_cache,
            "description": m.entry.description,
        });
        let token_type = m
            .entry
            .config
            .token_type
            .clone()
            .unwrap_or_else(|| "default-service".into());
        if let Some(obj) = data.as_object_mut() {
            m.entry.config.insert_audit_keys(obj);
            if let Some(o) = &m.entry.options {
                obj.insert("options".into(), json!(o));
            }
            if table == MountTableKind::Auth {
                obj.insert("token_type".into(), json!(token_type));
            }
        }
        let mut resp = Response::json(data);
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    async fn mount_tune_write(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        table: MountTableKind,
    ) -> Result<Option<Response>> {
        let path = clean_path(&d.get_str("path")?.unwrap_or_default())?;
        let core = self.core()?;
        let default_ttl = d
            .get_raw("default_lease_ttl")
            .map(|v| duration_value("default_lease_ttl", v))
            .transpose()?;
        let max_ttl = d
            .get_raw("max_lease_ttl")
            .map(|v| duration_value("max_lease_ttl", v))
            .transpose()?;
        let description = d.get_str("description")?;
        let options = d.get_map("options")?.map(|m| string_map(&m));
        let listing = d.get_str("listing_visibility")?;
        let token_type = d.get_str("token_type")?;
        // Given: the new list; a single empty value clears it (Vault's tune).
        let audit_keys = |name: &str| -> Result<Option<Vec<String>>> {
            Ok(d.get_list(name)?.map(|v| match v.as_slice() {
                [only] if only.is_empty() => Vec::new(),
                _ => v,
            }))
        };
        let request_keys = audit_keys("audit_non_hmac_request_keys")?;
        let response_keys = audit_keys("audit_non_hmac_response_keys")?;
        if let Some(tt) = &token_type
            && !["default-service", "default-batch", "service", "batch"].contains(&tt.as_str())
        {
            return Err(Error::bad(format!(
                "invalid value for 'token_type': {tt:?}"
            )));
        }
        let mut warning = None;
        core.tune_mount(&api_path(table, &path), |e| {
            if let Some(v) = default_ttl {
                e.config.default_lease_ttl = v;
            }
            if let Some(v) = max_ttl {
                e.config.max_lease_ttl = v;
            }
            validate_tuned_ttls(&e.config)?;
            if let Some(v) = description {
                e.description = v;
            }
            if let Some(o) = options {
                if let Some(v) = o.get("version") {
                    // A kv mount without a version option is version 1.
                    let current = match e.options.as_ref().and_then(|x| x.get("version")) {
                        Some(c) => go_parse_int(c).unwrap_or(1),
                        None if e.kind == "kv" => 1,
                        None => 0,
                    };
                    let wanted = go_parse_int(v)
                        .map_err(|err| Error::bad(format!("unable to parse options: {err}")))?;
                    if !matches!(wanted, 1 | 2) {
                        return Err(Error::bad(format!("invalid version provided: {wanted}")));
                    }
                    // kv upgrades v1 data on the first v2 request; it cannot go back.
                    if current > wanted {
                        return Err(Error::bad(format!(
                            "cannot downgrade mount from version {current}"
                        )));
                    }
                    if current < wanted && e.kind == "kv" {
                        warning = Some(format!(
                            "Upgrading mount from version {current} to version {wanted}. This mount will be unavailable for a brief period and will resume service shortly."
                        ));
                    }
                }
                // The given options are merged into the mount's: an empty value removes one
                // (never the version).
                let mut merged = e.options.clone().unwrap_or_default();
                for (k, v) in o {
                    if v.is_empty() && k != "version" {
                        merged.remove(&k);
                    } else {
                        merged.insert(k, v);
                    }
                }
                e.options = Some(merged);
            }
            if listing.is_some() {
                e.config.listing_visibility = listing;
            }
            if let Some(k) = request_keys {
                e.config.audit_non_hmac_request_keys = k;
            }
            if let Some(k) = response_keys {
                e.config.audit_non_hmac_response_keys = k;
            }
            if table == MountTableKind::Auth && token_type.is_some() {
                e.config.token_type = token_type;
            }
            Ok(())
        })
        .await?;
        Ok(warning.map(|w| Response::default().with_warning(w)))
    }
}

/// An `audit_non_hmac_*_keys` value of a mount's `config` at enable time: a list, or a
/// comma-separated string (as Vault's `TypeCommaStringSlice` reads it).
fn audit_keys(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// An integer as Go's `strconv.ParseInt` reads it (base 10), or its error text; empty is 0, as
/// Vault's `parseutil.ParseInt` has it.
fn go_parse_int(s: &str) -> std::result::Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse::<i64>().map_err(|e| {
        let reason = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {s:?}: {reason}")
    })
}

/// The TTL checks of an enable, in Vault's words: a default above the given maximum, or above
/// the system maximum when no maximum is given. (A maximum above the system's is allowed, as
/// in Vault: it is the mount's own limit.)
fn validate_enable_ttls(c: &MountConfig, system_max: i64) -> Result<()> {
    if c.max_lease_ttl != 0 && c.default_lease_ttl > c.max_lease_ttl {
        return Err(Error::bad(
            "given default lease TTL greater than given max lease TTL",
        ));
    }
    if c.max_lease_ttl == 0 && c.default_lease_ttl > system_max {
        return Err(Error::bad(format!(
            "given default lease TTL greater than system max lease TTL of {system_max}"
        )));
    }
    Ok(())
}

/// The TTL check of a tune, in Vault's words: with both set, the maximum may not fall below
/// the default.
fn validate_tuned_ttls(c: &MountConfig) -> Result<()> {
    let (def, max) = (c.default_lease_ttl, c.max_lease_ttl);
    if def != 0 && max != 0 && max < def {
        return Err(Error::bad(format!(
            "backend max lease TTL of {max} would be less than backend default lease TTL of {def}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_cleaned_and_dot_segments_refused() {
        for (input, want) in [
            ("foo", "foo/"),
            ("/foo/", "foo/"),
            ("a/b", "a/b/"),
            ("..x", "..x/"),
            ("x/..y", "x/..y/"),
            ("...", ".../"),
            (" sp", " sp/"),
            ("KVUp", "KVUp/"),
        ] {
            assert_eq!(clean_path(input).unwrap(), want, "{input}");
        }
        for input in ["..", ".", "../x", "x/..", "a/../b", "a/./b", "/../"] {
            let err = clean_path(input).unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest(m) if m == "relative paths not supported"),
                "{input}: {err:?}"
            );
        }
        for input in ["a\0b", "\u{1}", "x\u{7f}"] {
            assert!(clean_path(input).is_err(), "{input:?}");
        }
    }
}
