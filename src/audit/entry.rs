//! Vault's audit entry format: `request` and `response` JSON lines, empty fields omitted,
//! client tokens, accessors and every string leaf of request/response data HMAC'd.

use serde_json::Value;
use std::sync::LazyLock;
use std::time::SystemTime;

use super::Device;
use super::device::HashText;
use super::format::{Obj, write_int, write_plain, write_str, write_value};
use crate::clock::{from_unix_nanos, with_rfc3339_nanos};
use crate::core::observer::{RequestRecord, ResponseRecord};
use crate::logical::Operation;
use crate::token::TokenEntry;

/// Go's `time.Parse(time.RFC3339, s)` succeeds: such strings are not hashed. Checked by hand
/// (every string leaf of every entry passes here): `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` with
/// date and clock fields in range as Go checks them (month, the day within that month, hour,
/// minute, second). A string of that shape with a field out of range is no time to Go, so
/// Vault hashes it, and so does this: it may be a secret.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        d.iter().all(u8::is_ascii_digit).then(|| {
            d.iter()
                .fold(0u32, |n, c| n * 10 + u32::from(c.wrapping_sub(b'0')))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if b.len() < 20
        || !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':'))
    {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if !(1..=days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut rest = b.get(19..).unwrap_or_default();
    // Go takes a comma for the decimal point too.
    if let Some(frac) = rest.strip_prefix(b".").or_else(|| rest.strip_prefix(b",")) {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    match rest {
        [b'Z'] => true,
        // Go's parser takes any two-digit zone hour and minute (`+24:00`, `+05:60`).
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Read => "read",
        Operation::List => "list",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Patch => "patch",
        Operation::Help => "help",
    }
}

/// The version every built-in mount reports (`running_plugin_version` in `sys/mounts`).
static RUNNING_VERSION: LazyLock<String> =
    LazyLock::new(|| format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")));

/// Vault's client id of a token: its entity, or for a token without one the base64 SHA-256 of
/// its sorted policies (joined by U+007F) and its namespace id (after U+0000).
fn write_client_id(o: &mut Obj<'_>, entity_id: &str, policies: &[String]) {
    use base64::Engine as _;
    use sha2::Digest as _;
    if !entity_id.is_empty() {
        return o.str("client_id", entity_id);
    }
    let mut h = sha2::Sha256::new();
    let mut feed = |ps: &mut dyn Iterator<Item = &str>| {
        for (i, p) in ps.enumerate() {
            if i > 0 {
                h.update("\u{7f}");
            }
            h.update(p);
        }
    };
    if policies.is_sorted() {
        feed(&mut policies.iter().map(String::as_str));
    } else {
        let mut sorted: Vec<&str> = policies.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        feed(&mut sorted.into_iter());
    }
    h.update("\u{0}root");
    let mut b64 = [0u8; 44];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(h.finalize(), &mut b64)
        .unwrap_or_default();
    o.str(
        "client_id",
        std::str::from_utf8(b64.get(..n).unwrap_or_default()).unwrap_or_default(),
    );
}

#[cfg(test)]
fn ip_text(a: &str) -> String {
    let mut out = Vec::new();
    write_ip(
        &mut out,
        a.parse().unwrap_or(std::net::IpAddr::V4(0.into())),
    );
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
fn client_id(entity_id: &str, policies: &[String]) -> String {
    let mut out = Vec::new();
    let mut o = Obj::open(&mut out);
    write_client_id(&mut o, entity_id, policies);
    o.close();
    let v: Value = serde_json::from_slice(&out).unwrap_or_default();
    v["client_id"].as_str().unwrap_or_default().to_string()
}

/// An IP address as a JSON string (needs no escaping); IPv4, the usual case, without the
/// formatting machinery.
fn write_ip(out: &mut Vec<u8>, a: std::net::IpAddr) {
    out.push(b'"');
    match a {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

/// A time as Vault writes it (RFC 3339, nanoseconds, trailing zeros trimmed).
fn write_time(o: &mut Obj<'_>, k: &str, t: SystemTime) {
    with_rfc3339_nanos(t, |text| write_plain(o.key(k), text));
}

/// The `auth` of an entry for a request refused for its token (none, or not a valid one) and
/// of a token-less request's response entry when it failed (a refused login), as Vault writes
/// them: no `policy_results`.
const TOKEN_TYPE_ONLY: &[u8] = br#"{"token_type":"default"}"#;

/// A request refused because it had no valid token: Vault writes its request entry's error as
/// plain `permission denied`, and no `policy_results`.
fn tokenless_denial(r: &RequestRecord) -> bool {
    r.token.is_none()
        && (r.token_check_failed || matches!(r.errors.as_slice(), [e] if e == "permission denied"))
}

/// hashicorp/go-multierror's text, which Vault writes as an entry's `error`.
fn multierror(errors: &[String]) -> std::borrow::Cow<'_, str> {
    match errors {
        [] => "".into(),
        // Already in multierror form (Coffer's permission denied is).
        [one] if one.contains(" occurred:\n\t* ") => one.as_str().into(),
        [one] => format!("1 error occurred:\n\t* {one}\n\n").into(),
        many => {
            let points: Vec<String> = many.iter().map(|e| format!("* {e}")).collect();
            format!(
                "{} errors occurred:\n\t{}\n\n",
                many.len(),
                points.join("\n\t")
            )
            .into()
        }
    }
}

/// A token or accessor as an entry shows it: hashed, or as is (`log_raw`, `hmac_accessor=false`).
enum Shown<'a> {
    Hashed(HashText),
    Raw(&'a str),
}

impl Shown<'_> {
    fn as_str(&self) -> &str {
        match self {
            Shown::Hashed(h) => h.as_str(),
            Shown::Raw(s) => s,
        }
    }
}

/// What a response entry repeats of its request entry, encoded once for the request entry:
/// the `auth` object and the `request` object, the latter split where a response entry adds
/// the mount accessor a request entry leaves out.
#[derive(Default)]
pub(super) struct Repeated {
    bytes: Vec<u8>,
    /// `bytes[..auth]`: the `auth` object.
    auth: usize,
    /// `bytes[auth..slot]`: the `request` object up to its mount type; `bytes[slot..]`: the
    /// rest.
    slot: usize,
}

impl Repeated {
    fn auth(&self) -> &[u8] {
        self.bytes.get(..self.auth).unwrap_or_default()
    }

    fn request_head(&self) -> &[u8] {
        self.bytes.get(self.auth..self.slot).unwrap_or_default()
    }

    fn request_tail(&self) -> &[u8] {
        self.bytes.get(self.slot..).unwrap_or_default()
    }
}

/// Whether a request entry's `request` object carries the mount accessor (a create or update,
/// whose existence check resolved it, as OpenBao does); a response entry's carries it too when
/// the request succeeded.
fn shows_mount_accessor(r: &RequestRecord, response: bool) -> bool {
    // A request refused for its token never reached the existence check that resolves it
    // (one the existence check itself refused did).
    if tokenless_denial(r) && !r.token_check_failed {
        return false;
    }
    matches!(r.operation, Operation::Create | Operation::Update)
        || (response && r.errors.is_empty())
}

impl Device {
    fn hash_accessor<'a>(&self, accessor: &'a str) -> Shown<'a> {
        if self.hmac_accessor && !self.log_raw {
            Shown::Hashed(self.hash_text(accessor))
        } else {
            Shown::Raw(accessor)
        }
    }

    fn hash_token<'a>(&self, token: &'a str) -> Shown<'a> {
        if self.log_raw {
            Shown::Raw(token)
        } else {
            Shown::Hashed(self.hash_text(token))
        }
    }

    /// Writes `v` with every string leaf hashed (timestamps excepted), unless `log_raw`. A
    /// string whose nearest map key is in `plain` (the mount's non-HMAC keys) stays as it is,
    /// as Vault's hash walker leaves it; `key` is that nearest key.
    fn write_hashed(&self, out: &mut Vec<u8>, v: &Value, plain: &[String], key: &str) {
        match v {
            Value::String(s)
                if !self.log_raw && !is_timestamp(s) && !plain.iter().any(|p| p == key) =>
            {
                write_plain(out, self.hash_text(s).as_str());
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_hashed(out, x, plain, key);
                }
                out.push(b']');
            }
            Value::Object(o) => self.write_hashed_map(out, o, None, plain),
            other => write_value(out, other),
        }
    }

    /// A map with hashed leaves (see [`Self::write_hashed`]); `elide` replaces `keys` and
    /// `key_info` by their sizes.
    fn write_hashed_map(
        &self,
        out: &mut Vec<u8>,
        m: &serde_json::Map<String, Value>,
        elide: Option<()>,
        plain: &[String],
    ) {
        let mut o = Obj::open(out);
        for (k, x) in m {
            let out = o.key_escaped(k);
            match (elide, k.as_str(), x) {
                (Some(()), "keys", Value::Array(a)) => {
                    write_int(out, i64::try_from(a.len()).unwrap_or(i64::MAX));
                }
                (Some(()), "key_info", Value::Object(i)) => {
                    write_int(out, i64::try_from(i.len()).unwrap_or(i64::MAX));
                }
                _ => self.write_hashed(out, x, plain, k),
            }
        }
        o.close();
    }

    /// The `auth` object of a token entry, `token`/`accessor` already hashed; `allowed` adds
    /// `policy_results`, `uses` names the use count (`remaining_uses` for the request's token,
    /// `num_uses` for an issued one, none for a login's entry), `ttl` is `token_ttl` and
    /// `issue_time` adds the token's issue time.
    #[allow(clippy::too_many_arguments)]
    fn write_auth(
        out: &mut Vec<u8>,
        t: &TokenEntry,
        token: Option<&str>,
        accessor: Option<&str>,
        results: Option<(bool, &[std::sync::Arc<str>])>,
        uses: Option<&str>,
        ttl: i64,
        issue_time: bool,
        entity_created: bool,
    ) {
        let mut o = Obj::open(out);
        o.str("client_token", token.unwrap_or_default());
        o.str("accessor", accessor.unwrap_or_default());
        o.str("display_name", &t.display_name);
        o.strs("policies", &t.policies);
        o.strs("token_policies", &t.policies);
        match results {
            Some((true, granting)) if !granting.is_empty() => {
                let out = o.key("policy_results");
                out.extend_from_slice(br#"{"allowed":true,"granting_policies":["#);
                for (i, name) in granting.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(br#"{"name":"#);
                    write_str(out, name);
                    out.extend_from_slice(br#","namespace_id":"root","type":"acl"}"#);
                }
                out.extend_from_slice(b"]}");
            }
            Some((true, _)) => o.raw("policy_results", br#"{"allowed":true}"#),
            Some((false, _)) => o.raw("policy_results", br#"{"allowed":false}"#),
            None => {}
        }
        if let Some(meta) = t.meta.as_ref().filter(|m| !m.is_empty()) {
            let out = o.key("metadata");
            let mut m = Obj::open(out);
            for (k, v) in meta {
                write_str(m.key_escaped(k), v);
            }
            m.close();
        }
        if let Some(key) = uses {
            o.int(key, t.num_uses);
        }
        o.str("entity_id", &t.entity_id);
        if entity_created {
            o.raw("entity_created", b"true");
        }
        o.str("token_type", &t.token_type);
        o.int("token_ttl", ttl);
        if issue_time && t.creation_nanos != 0 {
            let secs = t.creation_nanos - t.creation_nanos.rem_euclid(1_000_000_000);
            write_time(&mut o, "token_issue_time", from_unix_nanos(secs));
        }
        o.close();
    }

    /// The entry's top-level `auth`: the request's token (hashes given), or Vault's
    /// `{"policy_results":..., "token_type":"default"}` without one.
    fn write_top_auth(
        out: &mut Vec<u8>,
        r: &RequestRecord,
        token: Option<&str>,
        accessor: Option<&str>,
    ) {
        if r.wrapping_refused {
            let mut o = Obj::open(out);
            o.str("client_token", token.unwrap_or_default());
            o.str("accessor", accessor.unwrap_or_default());
            o.str("token_type", "default");
            o.close();
            return;
        }
        if tokenless_denial(r) {
            out.extend_from_slice(TOKEN_TYPE_ONLY);
            return;
        }
        let allowed = !r.errors.iter().any(|e| e.contains("permission denied"));
        match &r.token {
            Some(t) => Self::write_auth(
                out,
                t,
                token,
                accessor,
                Some((allowed, &r.granting_policies)),
                Some("remaining_uses"),
                // The TTL the token was made with: a renewal moves its expiry, not this (as in
                // Vault, whose renewals change the lease, not the token entry).
                t.creation_ttl,
                true,
                false,
            ),
            None => out.extend_from_slice(if allowed {
                br#"{"policy_results":{"allowed":true},"token_type":"default"}"#
            } else {
                br#"{"policy_results":{"allowed":false},"token_type":"default"}"#
            }),
        }
    }

    /// The mount fields; `version_key` is `mount_running_version` in a request object and
    /// `mount_running_plugin_version` in a response object (as in Vault).
    fn write_mount(o: &mut Obj<'_>, r: &RequestRecord, version_key: &str, accessor: bool) {
        Self::write_mount_at(o, r, version_key, accessor, &mut 0);
    }

    /// [`Device::write_mount`], noting in `slot` where the mount accessor goes.
    fn write_mount_at(
        o: &mut Obj<'_>,
        r: &RequestRecord,
        version_key: &str,
        accessor: bool,
        slot: &mut usize,
    ) {
        if let Some(mount) = &r.mount {
            o.str("mount_point", &mount.path);
            if r.wrapping_refused {
                // Vault's early refusal knows the mount point only.
                return;
            }
            o.str("mount_type", &mount.kind);
            *slot = o.len();
            if accessor {
                o.str("mount_accessor", &mount.accessor);
            }
            o.str(version_key, RUNNING_VERSION.as_str());
            let class = if mount.path.starts_with("auth/") {
                "auth"
            } else {
                "secret"
            };
            o.str("mount_class", class);
        }
    }

    /// The `request` object. `response`: inside a response entry (see
    /// [`shows_mount_accessor`]). `slot` receives the offset in `out` where the mount accessor
    /// goes (after the mount type).
    fn write_request(
        &self,
        out: &mut Vec<u8>,
        r: &RequestRecord,
        response: bool,
        token: Option<&str>,
        accessor: Option<&str>,
        slot: &mut usize,
    ) {
        let mut o = Obj::open(out);
        o.str("id", &r.request_id);
        if let Some(t) = &r.token {
            write_client_id(&mut o, &t.entity_id, &t.policies);
        }
        o.str("operation", op_name(r.operation));
        // Without a mount nothing is spliced in: any offset inside the object will do.
        *slot = o.len();
        let with_accessor = shows_mount_accessor(r, response);
        Self::write_mount_at(&mut o, r, "mount_running_version", with_accessor, slot);
        o.str("client_token", token.unwrap_or_default());
        o.str("client_token_accessor", accessor.unwrap_or_default());
        o.raw("namespace", br#"{"id":"root"}"#);
        o.str("path", &r.path);
        if !r.data.is_empty() {
            let plain = r
                .mount
                .as_ref()
                .map_or(&[][..], |m| m.non_hmac_request_keys.as_slice());
            self.write_hashed_map(o.key("data"), &r.data, None, plain);
        }
        if let Some(a) = r.client_addr {
            write_ip(o.key("remote_address"), a);
        }
        o.int("remote_port", r.client_port.map_or(0, i64::from));
        o.int("wrap_ttl", r.wrap_ttl.unwrap_or(0));
        if !r.headers.is_empty() {
            self.write_headers(o.key("headers"), &r.headers);
        }
        o.close();
    }

    /// The request's token and accessor, hashed.
    fn request_hashes<'a>(&self, r: &'a RequestRecord) -> (Option<Shown<'a>>, Option<Shown<'a>>) {
        (
            r.client_token.as_ref().map(|s| self.hash_token(s.expose())),
            r.client_token_accessor
                .as_ref()
                .map(|s| self.hash_accessor(s.expose())),
        )
    }

    /// The `request` entry, as JSON (no prefix, no newline).
    #[cfg(test)]
    pub(super) fn request_entry(&self, r: &RequestRecord) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_request_entry(&mut out, r, None);
        out
    }

    /// Appends the `request` entry, as JSON (no prefix, no newline); with `keep`, also what
    /// the response entry repeats of it.
    pub(super) fn write_request_entry(
        &self,
        out: &mut Vec<u8>,
        r: &RequestRecord,
        keep: Option<&mut Repeated>,
    ) {
        let (token, accessor) = self.request_hashes(r);
        let (token, accessor) = (
            token.as_ref().map(Shown::as_str),
            accessor.as_ref().map(Shown::as_str),
        );
        let mut o = Obj::open(out);
        write_time(&mut o, "time", SystemTime::now());
        o.str("type", "request");
        let auth = o.key("auth");
        let auth_at = auth.len();
        Self::write_top_auth(auth, r, token, accessor);
        let auth_end = o.len();
        let request = o.key("request");
        let request_at = request.len();
        let mut slot = 0;
        self.write_request(request, r, false, token, accessor, &mut slot);
        let end = o.len();
        if tokenless_denial(r) || r.wrapping_refused {
            // Vault's token check returns its error as it is (no multierror around it).
            o.str("error", r.errors.first().map_or("", String::as_str));
        } else {
            o.str("error", &multierror(&r.errors));
        }
        o.close();
        if let Some(keep) = keep {
            let part = |range: std::ops::Range<usize>| out.get(range).unwrap_or_default();
            keep.bytes.clear();
            keep.bytes.extend_from_slice(part(auth_at..auth_end));
            keep.auth = keep.bytes.len();
            keep.bytes.extend_from_slice(part(request_at..slot));
            keep.slot = keep.bytes.len();
            keep.bytes.extend_from_slice(part(slot..end));
        }
    }

    /// The audited request headers: name → values, each value HMAC'd when the header's
    /// setting says so, on every device: Vault applies the header settings before any
    /// device's `log_raw` is looked at.
    fn write_headers(&self, out: &mut Vec<u8>, headers: &[(String, bool, Vec<String>)]) {
        let mut o = Obj::open(out);
        for (name, hmac, values) in headers {
            let hashed = *hmac;
            let out = o.key_escaped(name);
            out.push(b'[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if hashed {
                    write_plain(out, self.hash_text(v).as_str());
                } else {
                    write_str(out, v);
                }
            }
            out.push(b']');
        }
        o.close();
    }

    /// The token and accessor of a response's `auth` block, as the entry shows them.
    fn response_hashes<'v>(&self, block: &'v Value) -> (Option<Shown<'v>>, Option<Shown<'v>>) {
        let field = |k: &str| block.get(k).and_then(Value::as_str);
        (
            field("client_token").map(|x| self.hash_token(x)),
            field("accessor").map(|x| self.hash_accessor(x)),
        )
    }

    /// The `auth` object of a response: the issued token's entry, else the fields of the
    /// response's `auth` block.
    fn write_response_auth(
        &self,
        out: &mut Vec<u8>,
        block: &Value,
        issued: Option<&TokenEntry>,
        renewed: bool,
    ) {
        let (token, accessor) = self.response_hashes(block);
        let (token, accessor) = (
            token.as_ref().map(Shown::as_str),
            accessor.as_ref().map(Shown::as_str),
        );
        if let Some(t) = issued {
            let ttl = block
                .get("lease_duration")
                .and_then(Value::as_i64)
                .unwrap_or(t.ttl);
            return Self::write_auth(
                out,
                t,
                token,
                accessor,
                None,
                Some("num_uses"),
                ttl,
                renewed,
                false,
            );
        }
        let mut o = Obj::open(out);
        o.str("client_token", token.unwrap_or_default());
        o.str("accessor", accessor.unwrap_or_default());
        for k in [
            "policies",
            "token_policies",
            "metadata",
            "entity_id",
            "token_type",
        ] {
            o.value(k, block.get(k).unwrap_or(&Value::Null));
        }
        o.value(
            "token_ttl",
            block.get("lease_duration").unwrap_or(&Value::Null),
        );
        o.close();
    }

    /// The `response` entry, as JSON (no prefix, no newline).
    #[cfg(test)]
    pub(super) fn response_entry(&self, r: &RequestRecord, resp: &ResponseRecord) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_response_entry(&mut out, r, resp, None);
        out
    }

    /// Appends the `response` entry, as JSON (no prefix, no newline); `repeated`: what this
    /// device kept of the request entry (instead of encoding it again).
    pub(super) fn write_response_entry(
        &self,
        out: &mut Vec<u8>,
        r: &RequestRecord,
        resp: &ResponseRecord,
        repeated: Option<&Repeated>,
    ) {
        let (token, accessor) = match repeated {
            Some(_) => (None, None),
            None => self.request_hashes(r),
        };
        let (token, accessor) = (
            token.as_ref().map(Shown::as_str),
            accessor.as_ref().map(Shown::as_str),
        );
        let response_auth = resp.auth.as_ref().map(|block| {
            let mut a = Vec::with_capacity(512);
            self.write_response_auth(&mut a, block, resp.issued_token.as_deref(), resp.renewed);
            a
        });
        let mut o = Obj::open(out);
        write_time(&mut o, "time", SystemTime::now());
        o.str("type", "response");
        match (&resp.auth, resp.issued_token.as_deref()) {
            // A login's entry shows the issued token as its `auth` (as Vault), without its use
            // count.
            (Some(block), Some(t)) if r.token.is_none() => {
                let (token, accessor) = self.response_hashes(block);
                Self::write_auth(
                    o.key("auth"),
                    t,
                    token.as_ref().map(Shown::as_str),
                    accessor.as_ref().map(Shown::as_str),
                    None,
                    None,
                    t.ttl,
                    false,
                    resp.entity_created,
                );
            }
            _ if r.token.is_none() && !resp.errors.is_empty() => o.raw("auth", TOKEN_TYPE_ONLY),
            _ => match repeated {
                Some(rep) => o.raw("auth", rep.auth()),
                None => Self::write_top_auth(o.key("auth"), r, token, accessor),
            },
        }
        match repeated {
            Some(rep) => {
                let out = o.key("request");
                out.extend_from_slice(rep.request_head());
                if let Some(mount) = &r.mount
                    && shows_mount_accessor(r, true)
                    && !shows_mount_accessor(r, false)
                    && !mount.accessor.is_empty()
                {
                    out.extend_from_slice(br#","mount_accessor":"#);
                    write_str(out, &mount.accessor);
                }
                out.extend_from_slice(rep.request_tail());
            }
            None => self.write_request(o.key("request"), r, true, token, accessor, &mut 0),
        }
        o.object_unless_empty("response", |ro| {
            if let Some(a) = &response_auth {
                ro.raw("auth", a);
            }
            Self::write_mount(
                ro,
                r,
                "mount_running_plugin_version",
                shows_mount_accessor(r, true),
            );
            if resp.secret {
                // Vault's `logical.Secret` of a kv-v1 read: no lease id, so every field is
                // left out.
                ro.raw("secret", b"{}");
            }
            if let Some(data) = resp.data.as_ref().filter(|d| !d.is_empty()) {
                let elide =
                    (self.elide_list_responses && r.operation == Operation::List).then_some(());
                let plain = r
                    .mount
                    .as_ref()
                    .map_or(&[][..], |m| m.non_hmac_response_keys.as_slice());
                self.write_hashed_map(ro.key("data"), data, elide, plain);
            }
            // Vault's error response: the message under `data.error`, hashed like any value.
            if let Some(e) = resp.data_error.as_deref()
                && resp.data.as_ref().is_none_or(serde_json::Map::is_empty)
            {
                let mut d = Obj::open(ro.key("data"));
                let plain = r
                    .mount
                    .as_ref()
                    .map_or(&[][..], |m| m.non_hmac_response_keys.as_slice());
                self.write_hashed(
                    d.key("error"),
                    &Value::String(e.to_string()),
                    plain,
                    "error",
                );
                d.close();
            }
            // As Vault: plain text, not HMAC'd (they name parameters and settings, not values).
            ro.strs("warnings", &resp.warnings);
            if let Some(w) = &resp.wrap_info {
                let s = |k: &str| w.get(k).and_then(Value::as_str);
                let shown = |h: Option<Shown<'_>>| h.as_ref().map(|h| h.as_str().to_string());
                let out = ro.key("wrap_info");
                let mut wo = Obj::open(out);
                wo.value("ttl", w.get("ttl").unwrap_or(&Value::Null));
                wo.str(
                    "token",
                    &shown(s("token").map(|x| self.hash_token(x))).unwrap_or_default(),
                );
                wo.str(
                    "accessor",
                    &shown(s("accessor").map(|x| self.hash_accessor(x))).unwrap_or_default(),
                );
                wo.str("creation_time", s("creation_time").unwrap_or_default());
                wo.str("creation_path", s("creation_path").unwrap_or_default());
                wo.str(
                    "wrapped_accessor",
                    &shown(s("wrapped_accessor").map(|x| self.hash_accessor(x)))
                        .unwrap_or_default(),
                );
                wo.close();
            }
        });
        match resp.error_text.as_deref() {
            Some(text) => o.str("error", text),
            None => o.str("error", &multierror(&resp.errors)),
        }
        o.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_rust_displays_them() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.9.99.100",
            "255.255.255.255",
            "192.168.1.20",
            "::1",
            "fe80::1:2",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = a.parse().unwrap();
            assert_eq!(ip_text(a), format!("\"{ip}\""));
        }
    }

    #[test]
    fn multierror_matches_go() {
        assert_eq!(
            multierror(&["permission denied".into()]),
            "1 error occurred:\n\t* permission denied\n\n"
        );
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }

    #[test]
    fn timestamps_are_recognised() {
        assert!(is_timestamp("2026-11-28T10:15:30.1Z"));
        assert!(is_timestamp("2026-11-28T10:15:30+02:00"));
        assert!(!is_timestamp("hunter2"));
        assert!(is_timestamp("2026-11-28T10:15:30Z"));
        assert!(!is_timestamp("2026-11-28T10:15:30.Z"));
        assert!(!is_timestamp("2026-11-28T10:15:30+0200"));
        assert!(!is_timestamp("2026-11-28 10:15:30Z"));
        // What OpenBao 2.7.2 left plain (true) and hashed (false) in one kv write.
        for (s, plain) in [
            ("9999-99-99T99:99:99Z", false),
            ("2024-02-29T00:00:00Z", true),
            ("2023-02-29T00:00:00Z", false),
            ("2026-11-28T10:15:60Z", false),
            ("2026-11-28T10:15:30+24:00", true),
            ("2026-11-28T10:15:30+23:59", true),
            ("0000-01-01T00:00:00Z", true),
            ("2026-11-28T24:00:00Z", false),
            ("2026-11-28T10:15:30,5Z", true),
            ("2026-11-28T10:15:30+05:60", true),
        ] {
            assert_eq!(is_timestamp(s), plain, "{s}");
        }
    }

    #[test]
    fn client_id_of_a_token_without_entity_is_openbaos() {
        // Observed on OpenBao 2.7.2 for the dev root token.
        assert_eq!(
            client_id("", &["root".into()]),
            "0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8="
        );
        assert_eq!(client_id("e-1", &["root".into()]), "e-1");
    }
}
