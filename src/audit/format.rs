//! Writes an entry byte for byte as Vault's Go encoder does: the fixed objects (`auth`,
//! `request`, `response`, `wrap_info`, ...) in their struct field order, maps (request and
//! response data, metadata) with sorted keys, and `<`, `>`, `&`, U+2028, U+2029 escaped as
//! `\u003c`-style sequences (Go's `json.Encoder` default).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use std::io::{self, Write};

/// The field order of each fixed object (Go struct order in Vault's `audit/format.go`).
#[derive(Clone, Copy)]
enum Shape {
    /// A request or response entry.
    Entry,
    Auth,
    PolicyResults,
    GrantingPolicy,
    Request,
    Namespace,
    Response,
    WrapInfo,
    /// A map: keys sorted (serde_json's map order is the same byte order Go sorts by).
    Map,
}

impl Shape {
    fn order(self) -> &'static [&'static str] {
        match self {
            Shape::Entry => &[
                "time",
                "type",
                "auth",
                "request",
                "response",
                "error",
                "forwarded_from",
                "forwarded",
            ],
            Shape::Auth => &[
                "client_token",
                "accessor",
                "display_name",
                "policies",
                "token_policies",
                "identity_policies",
                "external_namespace_policies",
                "no_default_policy",
                "policy_results",
                "metadata",
                "num_uses",
                "remaining_uses",
                "entity_id",
                "entity_created",
                "token_type",
                "token_ttl",
                "token_issue_time",
            ],
            Shape::PolicyResults => &["allowed", "granting_policies"],
            Shape::GrantingPolicy => &["name", "namespace_id", "namespace_path", "type"],
            Shape::Request => &[
                "id",
                "client_id",
                "replication_cluster",
                "operation",
                "mount_point",
                "mount_type",
                "mount_accessor",
                "mount_running_version",
                "mount_running_sha256",
                "mount_class",
                "mount_is_external_plugin",
                "client_token",
                "client_token_accessor",
                "namespace",
                "path",
                "data",
                "policy_override",
                "remote_address",
                "remote_port",
                "wrap_ttl",
                "headers",
                "client_certificate_serial_number",
            ],
            Shape::Namespace => &["id", "path"],
            Shape::Response => &[
                "auth",
                "mount_point",
                "mount_type",
                "mount_accessor",
                "mount_running_plugin_version",
                "mount_running_sha256",
                "mount_class",
                "mount_is_external_plugin",
                "secret",
                "data",
                "warnings",
                "redirect",
                "wrap_info",
                "headers",
            ],
            Shape::WrapInfo => &[
                "ttl",
                "token",
                "accessor",
                "creation_time",
                "creation_path",
                "wrapped_accessor",
            ],
            Shape::Map => &[],
        }
    }

    fn child(self, key: &str) -> Shape {
        match (self, key) {
            (Shape::Entry, "auth") | (Shape::Response, "auth") => Shape::Auth,
            (Shape::Entry, "request") => Shape::Request,
            (Shape::Entry, "response") => Shape::Response,
            (Shape::Auth, "policy_results") => Shape::PolicyResults,
            (Shape::PolicyResults, "granting_policies") => Shape::GrantingPolicy,
            (Shape::Request, "namespace") => Shape::Namespace,
            (Shape::Response, "wrap_info") => Shape::WrapInfo,
            _ => Shape::Map,
        }
    }
}

struct Ordered<'a>(&'a Value, Shape);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                let order = self.1.order();
                for k in order {
                    if let Some(v) = m.get(*k) {
                        map.serialize_entry(k, &Ordered(v, self.1.child(k)))?;
                    }
                }
                for (k, v) in m {
                    if !order.contains(&k.as_str()) {
                        map.serialize_entry(k, &Ordered(v, self.1.child(k)))?;
                    }
                }
                map.end()
            }
            // A list of objects keeps the shape of its elements (granting_policies).
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Ordered(v, self.1))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// A float as Go's `encoding/json` writes it: the shortest text that reads back the same,
/// plain between 1e-6 and 1e21 (`100`, `3`, `0.000001`), with an exponent outside (`1e-7`,
/// `1e+21`).
pub(super) fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip text, never with an exponent.
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => s,
    }
}

/// Go's `json.Encoder` string escaping and float format on top of serde_json's compact output.
struct GoFormatter;

/// Integers beyond ±2^53 lose precision as Vault's float64 (`9007199254740993` reads back as
/// `…992`, `u64::MAX` as `18446744073709552000`); below, Go writes them as they are.
const EXACT_IN_F64: u64 = 1 << 53;

/// An integer of `magnitude` as Go's float64 writes it: `value` itself up to 2^53, else the
/// text of `approx`, the nearest float64.
fn write_go_integer<W: ?Sized + Write>(
    writer: &mut W,
    magnitude: u64,
    value: impl std::fmt::Display,
    approx: f64,
) -> io::Result<()> {
    if magnitude <= EXACT_IN_F64 {
        write!(writer, "{value}")
    } else {
        writer.write_all(go_float(approx).as_bytes())
    }
}

impl serde_json::ser::Formatter for GoFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value).as_bytes())
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "beyond 2^53 the float64 Vault keeps, on purpose"
    )]
    fn write_u64<W: ?Sized + Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        write_go_integer(writer, value, value, value as f64)
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "beyond 2^53 the float64 Vault keeps, on purpose"
    )]
    fn write_i64<W: ?Sized + Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        write_go_integer(writer, value.unsigned_abs(), value, value as f64)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Most strings (HMACs, paths, ids) hold nothing Go escapes: one write.
        if !fragment
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
        {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(fragment.get(start..i).unwrap_or_default().as_bytes())?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(fragment.get(start..).unwrap_or_default().as_bytes())
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape as E;
        let s: &[u8] = match escape {
            // Go writes these two as \u sequences, not \b and \f.
            E::Backspace => b"\\u0008",
            E::FormFeed => b"\\u000c",
            E::Quote => b"\\\"",
            E::ReverseSolidus => b"\\\\",
            E::Solidus => b"\\/",
            E::LineFeed => b"\\n",
            E::CarriageReturn => b"\\r",
            E::Tab => b"\\t",
            E::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hi = HEX.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(byte & 0xf)).copied().unwrap_or(b'0');
                return writer.write_all(&[b'\\', b'u', b'0', b'0', hi, lo]);
            }
        };
        writer.write_all(s)
    }
}

/// Appends `entry` to `out` as Vault writes it (without the newline).
pub(super) fn write_entry(out: &mut Vec<u8>, entry: &Value) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    Ordered(entry, Shape::Entry)
        .serialize(&mut ser)
        .map_err(io::Error::other)
}

/// Bytes a JSON string may hold as they are (Go's encoder escapes the others), as a bit set
/// over ASCII.
const PLAIN: u128 = {
    let mut m = 0u128;
    let mut b: u8 = 0x20;
    while b < 0x7f {
        if !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&') {
            m |= 1u128 << b;
        }
        b += 1;
    }
    m
};

fn is_plain(b: u8) -> bool {
    b < 128 && (PLAIN >> b) & 1 == 1
}

/// Appends `s`, which holds only bytes that need no escaping (an HMAC, a time), as a JSON
/// string.
pub(super) fn write_plain(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.bytes().all(is_plain));
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends `s` as a JSON string, escaped as Go's encoder does.
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Most strings (paths, ids, names) need no escaping at all.
    if s.bytes().all(is_plain) {
        return write_plain(out, s);
    }
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    // Writing into a Vec cannot fail.
    let _ = s.serialize(&mut ser);
}

/// Appends an integer (decimal, as `Display` writes it, without the formatting machinery).
pub(super) fn write_int(out: &mut Vec<u8>, v: impl Into<i64>) {
    let v: i64 = v.into();
    if v < 0 {
        out.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // `n % 10` is a single digit.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends `v` as JSON (maps with sorted keys), escaped as Go's encoder does.
pub(super) fn write_value(out: &mut Vec<u8>, v: &Value) {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    let _ = v.serialize(&mut ser);
}

/// Writes one JSON object field by field, leaving out empty values (Go's `omitempty`).
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object.
    pub(super) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Bytes in the buffer so far.
    pub(super) fn len(&self) -> usize {
        self.out.len()
    }

    /// Writes `"key":` and returns the buffer for the value.
    pub(super) fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Writes `"key":` for a key that may need escaping (a map key).
    pub(super) fn key_escaped(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(b':');
        self.out
    }

    /// A string, unless empty.
    pub(super) fn str(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            write_str(self.key(k), v);
        }
    }

    /// An integer, unless zero.
    pub(super) fn int(&mut self, k: &str, v: i64) {
        if v != 0 {
            write_int(self.key(k), v);
        }
    }

    /// A list of strings, unless empty.
    pub(super) fn strs(&mut self, k: &str, v: &[String]) {
        if v.is_empty() {
            return;
        }
        let out = self.key(k);
        out.push(b'[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, s);
        }
        out.push(b']');
    }

    /// A JSON value as is, unless empty (null, false, 0, "", [] or {}).
    pub(super) fn value(&mut self, k: &str, v: &Value) {
        let empty = match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        };
        if !empty {
            write_value(self.key(k), v);
        }
    }

    /// Pre-encoded JSON bytes.
    pub(super) fn raw(&mut self, k: &str, v: &[u8]) {
        self.key(k).extend_from_slice(v);
    }

    /// A nested object `fill` writes, left out when it writes no field.
    pub(super) fn object_unless_empty(&mut self, k: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        let (mark, first) = (self.out.len(), self.first);
        let mut inner = Obj::open(self.key(k));
        fill(&mut inner);
        let empty = inner.first;
        inner.close();
        if empty {
            self.out.truncate(mark);
            self.first = first;
        }
    }

    /// Closes the object.
    pub(super) fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `entry` as Vault's `jsonx` format writes it (IBM JSONx, through the jefferai/jsonx
/// encoder): the entry's members, in sorted key order, as `json:object`, `json:array`,
/// `json:string`, `json:number`, `json:boolean` and `json:null` elements named by a `name`
/// attribute; no XML declaration and no enclosing root element (Vault writes each entry as a
/// fragment). Unlike that encoder, which writes string values unescaped, Coffer escapes `<`,
/// `&` and friends in values as well as in names, so every entry is well-formed XML.
pub(super) fn write_jsonx(out: &mut Vec<u8>, entry: &Value) -> io::Result<()> {
    let Value::Object(m) = entry else {
        return Err(io::Error::other("an audit entry is an object"));
    };
    for (k, v) in m {
        jsonx_value(out, Some(k), v);
    }
    Ok(())
}

fn jsonx_value(out: &mut Vec<u8>, name: Option<&str>, v: &Value) {
    let named = |out: &mut Vec<u8>, tag: &str| {
        out.extend_from_slice(b"<json:");
        out.extend_from_slice(tag.as_bytes());
        if let Some(n) = name {
            out.extend_from_slice(b" name=\"");
            xml_escape(out, n);
            out.push(b'"');
        }
    };
    match v {
        Value::Null => {
            named(out, "null");
            out.extend_from_slice(b" />");
        }
        Value::Bool(b) => {
            named(out, "boolean");
            out.push(b'>');
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            out.extend_from_slice(b"</json:boolean>");
        }
        Value::Number(_) => {
            named(out, "number");
            out.push(b'>');
            // As the JSON writer shows it (Go's float64 text).
            write_value(out, v);
            out.extend_from_slice(b"</json:number>");
        }
        Value::String(s) => {
            named(out, "string");
            out.push(b'>');
            xml_escape(out, s);
            out.extend_from_slice(b"</json:string>");
        }
        Value::Array(a) => {
            named(out, "array");
            out.push(b'>');
            for x in a {
                jsonx_value(out, None, x);
            }
            out.extend_from_slice(b"</json:array>");
        }
        Value::Object(m) => {
            named(out, "object");
            out.push(b'>');
            for (k, x) in m {
                jsonx_value(out, Some(k), x);
            }
            out.extend_from_slice(b"</json:object>");
        }
    }
}

/// Go's `xml.EscapeText`.
fn xml_escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        let esc: &str = match c {
            '"' => "&#34;",
            '\'' => "&#39;",
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\t' => "&#x9;",
            '\n' => "&#xA;",
            '\r' => "&#xD;",
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        };
        out.extend_from_slice(esc.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            12_345,
            -98_765,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }
    use serde_json::json;

    #[test]
    fn go_field_order_sorted_maps_and_html_escapes() {
        let e = json!({
            "type": "request", "time": "t", "error": "a<b>&c\u{2028}\u{8}\n\u{1}",
            "request": {"path": "p", "id": "i", "namespace": {"id": "root"},
                        "data": {"z": 1, "a": {"y": 2, "b": 3}}},
            "auth": {"token_type": "default", "policy_results": {"allowed": true}},
        });
        let mut out = Vec::new();
        write_entry(&mut out, &e).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"time":"t","type":"request","auth":{"policy_results":{"allowed":true},"token_type":"default"},"request":{"id":"i","namespace":{"id":"root"},"path":"p","data":{"a":{"b":3,"y":2},"z":1}},"error":"a\u003cb\u003e\u0026c\u2028\u0008\n\u0001"}"#
        );
    }

    #[test]
    fn jsonx_is_vaults_fragment_with_escaped_text() {
        let e = json!({
            "type": "request", "time": "t",
            "request": {"path": "a<b", "data": {"n": 1, "l": ["x", null, true]}},
        });
        let mut out = Vec::new();
        write_jsonx(&mut out, &e).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<json:object name="request"><json:object name="data"><json:array name="l"><json:string>x</json:string><json:null /><json:boolean>true</json:boolean></json:array><json:number name="n">1</json:number></json:object><json:string name="path">a&lt;b</json:string></json:object><json:string name="time">t</json:string><json:string name="type">request</json:string>"#
        );
    }
}
