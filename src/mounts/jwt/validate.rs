//! Token validation in the order of Vault's JWT plugin (`cap/jwt` `Validator.Validate`):
//! signature (any configured key), registered-claim homoglyphs, `alg` against the allowed set,
//! `iss`, `sub`, `aud`, then time with the role's leeways. Errors are the texts Vault prints
//! after `error validating token: `.
//!
//! The signature is checked before anything in the payload is trusted; the payload is parsed
//! only after a key verified it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::keys::{PublicKey, RemoteKeys};

/// The algorithms accepted when `jwt_supported_algs` is empty (every asymmetric one Vault lists;
/// ES512 is listed too but no key here can verify it).
pub const DEFAULT_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Default `clock_skew_leeway` (seconds).
pub const DEFAULT_CLOCK_SKEW: i64 = 60;
/// Default `expiration_leeway` and `not_before_leeway` (seconds).
pub const DEFAULT_LEEWAY: i64 = 150;

/// Where a mount's verification keys come from.
pub enum KeySet {
    /// `jwt_validation_pubkeys`: every key is tried.
    Static(Vec<PublicKey>),
    /// `jwks_url` or discovery: keys by `kid`, cached.
    Remote(RemoteKeys),
}

/// A compact JWS split and its header decoded.
pub struct Compact<'a> {
    /// The `alg` header (empty when absent).
    pub alg: String,
    /// The `kid` header.
    pub kid: Option<String>,
    /// `header.payload`, the signed bytes.
    pub signing_input: &'a str,
    /// The payload, decoded (parsed only after the signature verified).
    pub payload: Vec<u8>,
    /// The signature segment (base64url).
    pub signature: &'a str,
    /// The header asks for nothing this verifier does not do: no `crit` extension but `b64`
    /// (go-jose's one), and no unencoded payload (`b64: false`, which no JWT uses).
    pub understood: bool,
}

/// Whether a JWS header's `crit` and `b64` parameters are ones this verifier honours (RFC 7515
/// §4.1.11: a token naming an extension the recipient does not understand is invalid).
fn understood(h: &Map<String, Value>) -> bool {
    let crit_ok = match h.get("crit") {
        None => true,
        Some(Value::Array(names)) => names.iter().all(|n| n.as_str() == Some("b64")),
        Some(_) => false,
    };
    crit_ok && !matches!(h.get("b64"), Some(v) if v != &Value::Bool(true))
}

/// Go's `base64.CorruptInputError` text for a failed decode.
fn b64(segment: &str) -> Result<Vec<u8>, String> {
    use base64::DecodeError as D;
    URL_SAFE_NO_PAD.decode(segment).map_err(|e| {
        let at = match e {
            D::InvalidByte(o, _) | D::InvalidLastSymbol(o, _) => o,
            D::InvalidLength(len) => len - len % 4,
            D::InvalidPadding => segment.find('=').unwrap_or(0),
        };
        format!("illegal base64 data at input byte {at}")
    })
}

/// Splits a compact JWS and decodes its three segments, as go-jose does before any key is
/// tried. Errors are go-jose's texts (JSON syntax errors are serde's).
pub fn split(token: &str) -> Result<Compact<'_>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err("go-jose/go-jose: compact JWS format must have three parts".into());
    };
    let raw = b64(header)?;
    let payload_bytes = b64(payload)?;
    b64(signature)?;
    let h: Map<String, Value> = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    let alg = h
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kid = h.get("kid").and_then(Value::as_str).map(str::to_string);
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .unwrap_or_default();
    Ok(Compact {
        alg,
        kid,
        signing_input,
        payload: payload_bytes,
        signature,
        understood: understood(&h),
    })
}

/// Verifies the signature with `keys` and returns the `alg` header and the claims. `Err` is the
/// text after `error validating token: `.
pub async fn verify_signature(
    keys: &KeySet,
    token: &str,
) -> Result<(String, Map<String, Value>), String> {
    let remote = matches!(keys, KeySet::Remote(_));
    let c = split(token).map_err(|e| {
        let e = if remote {
            format!("oidc: malformed jwt: {e}")
        } else {
            e
        };
        format!("error verifying token signature: {e}")
    })?;
    // go-oidc refuses algorithms outside its list before looking for keys.
    if remote && !DEFAULT_ALGS.contains(&c.alg.as_str()) {
        let expected: Vec<String> = DEFAULT_ALGS.iter().map(|a| format!("{a:?}")).collect();
        return Err(format!(
            "error verifying token signature: oidc: malformed jwt: unexpected signature algorithm {:?}; expected [{}]",
            c.alg,
            expected.join(" ")
        ));
    }
    // `none`, HMAC and unknown algorithms have no key that verifies them; an empty signature
    // never verifies either, nor does one whose header names an extension not understood here
    // (go-jose fails those as a crypto failure, which reads as no key verifying).
    let alg = c
        .alg
        .parse::<Algorithm>()
        .ok()
        .filter(|_| !c.signature.is_empty() && c.understood);
    let verified = match (keys, alg) {
        (_, None) => false,
        (KeySet::Static(list), Some(alg)) => list
            .iter()
            .any(|k| k.verify(alg, c.signing_input.as_bytes(), c.signature)),
        (KeySet::Remote(r), Some(alg)) => {
            r.verify(
                c.kid.as_deref(),
                alg,
                c.signing_input.as_bytes(),
                c.signature,
            )
            .await
        }
    };
    if !verified {
        return Err(format!(
            "error verifying token signature: {}",
            if remote {
                "failed to verify id token signature"
            } else {
                "no known key successfully validated the token signature"
            }
        ));
    }
    let claims = serde_json::from_slice::<Map<String, Value>>(&c.payload)
        .map_err(|e| format!("error verifying token signature: {e}"))?;
    Ok((c.alg, claims))
}

/// Claim names registered by RFC 7519 that Vault reads.
const REGISTERED: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Unicode simple case folding, close enough for the registered names (`ſ` → `s`, `K` → `k`).
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Rejects claim keys that differ from a registered claim only under case folding, so the
/// value checked and the value a consumer reads cannot differ (hashicorp/cap PR #191).
pub fn check_homoglyphs(claims: &Map<String, Value>) -> Result<(), String> {
    for key in claims.keys() {
        if REGISTERED.contains(&key.as_str()) || key.is_ascii() && key.len() > 3 {
            continue;
        }
        let folded = fold(key);
        if let Some(reg) = REGISTERED.iter().find(|r| **r == folded) {
            return Err(format!(
                "ambiguous claim: key {key:?} collides with registered claim {reg:?} under case folding"
            ));
        }
    }
    Ok(())
}

/// What the role and config expect of a token.
pub struct Expected<'a> {
    /// `bound_issuer` (empty: not checked).
    pub issuer: &'a str,
    /// `bound_subject` (empty: not checked).
    pub subject: &'a str,
    /// `bound_audiences` (empty: not checked here).
    pub audiences: &'a [String],
    /// `jwt_supported_algs` (empty: [`DEFAULT_ALGS`]).
    pub algorithms: &'a [String],
    /// Role leeways as stored (0 = default, negative = none).
    pub clock_skew_leeway: i64,
    /// See [`Expected::clock_skew_leeway`].
    pub expiration_leeway: i64,
    /// See [`Expected::clock_skew_leeway`].
    pub not_before_leeway: i64,
    /// Now, Unix nanoseconds.
    pub now_nanos: i128,
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!(
            "json: cannot unmarshal {} into Go struct field Claims.{name} of type string",
            crate::logical::field::go_type(v)
        )),
    }
}

/// The `aud` claim as a list (a string is a one-element list).
pub fn audience(claims: &Map<String, Value>) -> Result<Vec<String>, String> {
    const BAD: &str =
        "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience";
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| BAD.to_string())
            })
            .collect(),
        Some(_) => Err(BAD.into()),
    }
}

/// A NumericDate claim in whole seconds (fractions truncated, absent or null = 0).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or_else(|| go_int64(n.as_f64()))),
        Some(_) => {
            Err("go-jose/go-jose/jwt: expected number value to unmarshal NumericDate".into())
        }
    }
}

/// Go's `int64(f)` on amd64, which go-jose's `NumericDate` goes through: fractions truncated, and
/// a value outside int64 becomes its minimum (so an `exp` of `1e300` is long past, not never).
fn go_int64(f: Option<f64>) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    match f {
        Some(f) if (-LIMIT..LIMIT).contains(&f) => f as i64,
        _ => i64::MIN,
    }
}

fn leeway(v: i64, default: i64) -> i64 {
    match v {
        0 => default,
        n if n < 0 => 0,
        n => n,
    }
}

/// The claim checks after the signature, in Vault's order.
pub fn validate_claims(
    alg: &str,
    claims: &Map<String, Value>,
    e: &Expected<'_>,
) -> Result<(), String> {
    let allowed = if e.algorithms.is_empty() {
        DEFAULT_ALGS.contains(&alg)
    } else {
        e.algorithms.iter().any(|a| a == alg)
    };
    if !allowed {
        return Err(
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
                .into(),
        );
    }
    let iss = string_claim(claims, "iss")?;
    let sub = string_claim(claims, "sub")?;
    let aud = audience(claims)?;
    let iat = numeric_date(claims, "iat")?;
    let mut exp = numeric_date(claims, "exp")?;
    let mut nbf = numeric_date(claims, "nbf")?;
    if !e.issuer.is_empty() && e.issuer != iss {
        return Err("invalid issuer (iss) claim".into());
    }
    if !e.subject.is_empty() && e.subject != sub {
        return Err("invalid subject (sub) claim".into());
    }
    if !e.audiences.is_empty() && !e.audiences.iter().any(|a| aud.contains(a)) {
        return Err(
            "invalid audience (aud) claim: audience claim does not match any expected audience"
                .into(),
        );
    }
    if iat == 0 && exp == 0 && nbf == 0 {
        return Err(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token".into(),
        );
    }
    if exp == 0 {
        exp = iat
            .max(nbf)
            .saturating_add(leeway(e.expiration_leeway, DEFAULT_LEEWAY));
    }
    if nbf == 0 {
        nbf = if iat != 0 {
            iat
        } else {
            exp.saturating_sub(leeway(e.not_before_leeway, DEFAULT_LEEWAY))
        };
    }
    let skew = i128::from(leeway(e.clock_skew_leeway, DEFAULT_CLOCK_SKEW)) * 1_000_000_000;
    let secs = |s: i64| i128::from(s) * 1_000_000_000;
    if e.now_nanos + skew < secs(nbf) {
        return Err("invalid not before (nbf) claim: token not yet valid".into());
    }
    if e.now_nanos - skew > secs(exp) {
        return Err("invalid expiration time (exp) claim: token is expired".into());
    }
    if iat != 0 && e.now_nanos + skew < secs(iat) {
        return Err("invalid issued at (iat) claim: token issued in the future".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            issuer: "",
            subject: "",
            audiences: &[],
            algorithms: &[],
            clock_skew_leeway: 0,
            expiration_leeway: 0,
            not_before_leeway: 0,
            now_nanos: i128::from(now) * 1_000_000_000,
        }
    }

    #[test]
    fn leeways_follow_cap_semantics() {
        let algs = ["RS256".to_string()];
        let mut e = expected(1_000_000);
        e.algorithms = &algs;
        // exp synthesised from iat + 150, plus 60 s skew.
        let c = claims(json!({"iat": 1_000_000 - 200}));
        assert!(validate_claims("RS256", &c, &e).is_ok());
        let c = claims(json!({"iat": 1_000_000 - 211}));
        assert_eq!(
            validate_claims("RS256", &c, &e).unwrap_err(),
            "invalid expiration time (exp) claim: token is expired"
        );
        e.clock_skew_leeway = -1;
        let c = claims(json!({"exp": 1_000_000 - 1}));
        assert!(validate_claims("RS256", &c, &e).is_err());
        let c = claims(json!({"exp": 1_000_000 + 1, "nbf": 1_000_000 + 1}));
        assert_eq!(
            validate_claims("RS256", &c, &e).unwrap_err(),
            "invalid not before (nbf) claim: token not yet valid"
        );
        assert_eq!(
            validate_claims("RS512", &c, &e).unwrap_err(),
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
        );
    }

    #[test]
    fn malformed_tokens_get_go_jose_texts() {
        let e = |t: &str| split(t).err().unwrap();
        assert_eq!(
            e("abc.def"),
            "go-jose/go-jose: compact JWS format must have three parts"
        );
        assert_eq!(e("x.y.z"), "illegal base64 data at input byte 0");
        assert_eq!(e("abcde.e30.e30"), "illegal base64 data at input byte 4");
        assert_eq!(e("e30.e30.a*b"), "illegal base64 data at input byte 1");
        assert_eq!(split("e30.e30.e30").unwrap().alg, "");
    }

    #[test]
    fn homoglyph_keys_are_rejected() {
        assert!(check_homoglyphs(&claims(json!({"sub": "a", "subject": "b"}))).is_ok());
        assert_eq!(
            check_homoglyphs(&claims(json!({"ſub": "x"}))).unwrap_err(),
            "ambiguous claim: key \"ſub\" collides with registered claim \"sub\" under case folding"
        );
        assert!(check_homoglyphs(&claims(json!({"SUB": "x"}))).is_err());
    }

    #[test]
    fn audience_shapes() {
        assert_eq!(audience(&claims(json!({"aud": "a"}))).unwrap(), vec!["a"]);
        assert!(audience(&claims(json!({"aud": [1]}))).is_err());
        assert!(audience(&claims(json!({}))).unwrap().is_empty());
    }
}
