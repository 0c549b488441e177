//! Verification keys: static PEM keys (`jwt_validation_pubkeys`) and remote JWKS (`jwks_url`, or
//! the `jwks_uri` of an OIDC discovery document), with signature checks done by `jsonwebtoken`
//! (ring underneath).
//!
//! Every key carries its family, and a signature is only checked when the token's `alg` belongs
//! to it: `none` and the HMAC algorithms never verify (the classic "HS256 with the RSA public
//! key as secret" confusion cannot happen), and an `oct` JWK is never loaded.
//!
//! Remote keys are cached in an `ArcSwap` snapshot: a login with a known `kid` makes no network
//! call. An unknown `kid` (or a token without `kid` that no cached key verifies) triggers one
//! refresh, single-flight and at most once per [`REFRESH_MIN_INTERVAL`] per key set; the
//! periodic pass refreshes the set every [`BACKGROUND_REFRESH`]. A failed fetch keeps the last
//! good keys for [`STALE_AFTER`].

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Least time between two fetches caused by unknown `kid`s.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Age after which the periodic pass refreshes a JWKS.
pub const BACKGROUND_REFRESH: Duration = Duration::from_secs(600);
/// Age after which keys that could not be refreshed are no longer used.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Network deadline of one discovery or JWKS fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or JWKS accepted.
const MAX_BODY: usize = 1 << 20;

/// What signatures a key can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// RS256/384/512 and PS256/384/512.
    Rsa,
    /// ES256.
    EcP256,
    /// ES384.
    EcP384,
    /// EdDSA (Ed25519).
    Ed25519,
}

impl Family {
    /// True when a token signed with `alg` may be checked with a key of this family.
    pub fn allows(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        matches!(
            (self, alg),
            (
                Family::Rsa,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ) | (Family::EcP256, A::ES256)
                | (Family::EcP384, A::ES384)
                | (Family::Ed25519, A::EdDSA)
        )
    }
}

/// One public key ready for verification.
#[derive(Clone)]
pub struct PublicKey {
    /// The JWK `kid` (none for PEM keys).
    pub kid: Option<String>,
    /// The JWK `alg`, when the provider pinned one.
    pub alg: Option<Algorithm>,
    /// Its family.
    pub family: Family,
    key: DecodingKey,
}

impl PublicKey {
    /// Checks `signature` (base64url) over `message` when `alg` suits this key.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        if !self.family.allows(alg) || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        jsonwebtoken::crypto::verify(signature, message, &self.key, alg).unwrap_or(false)
    }
}

/// Length of the shortest RSA SubjectPublicKeyInfo accepted (2048-bit modulus).
const MIN_RSA_SPKI_LEN: usize = 290;

// DER encodings of the named-curve OIDs inside an EC SubjectPublicKeyInfo.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One PEM block: its label, decoded bytes, and whether anything but whitespace follows it.
fn pem_block(text: &str) -> Option<(String, Vec<u8>, bool)> {
    let start = text.find("-----BEGIN ")?;
    let rest = text.get(start + 11..)?;
    let label_end = rest.find("-----")?;
    let label = rest.get(..label_end)?.to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_len = rest.get(body_start..)?.find(&end_marker)?;
    let body: String = rest
        .get(body_start..body_start + body_len)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let trailing = rest
        .get(body_start + body_len + end_marker.len()..)
        .is_some_and(|t| !t.trim().is_empty());
    let der = STANDARD.decode(body).ok()?;
    Some((label, der, trailing))
}

/// Parses one PEM public key (SubjectPublicKeyInfo or certificate): RSA, ECDSA P-256/P-384 or
/// Ed25519. The error is the text Vault appends to `error parsing public key: `.
pub fn parse_pem(pem: &str) -> Result<PublicKey, String> {
    const INVALID: &str = "data does not contain any valid public keys";
    let Some((label, der, trailing)) = pem_block(pem) else {
        return Err(INVALID.into());
    };
    if trailing {
        return Err("unexpected trailing data after parsed PEM block".into());
    }
    if label != "PUBLIC KEY" && label != "CERTIFICATE" {
        return Err(INVALID.into());
    }
    let bytes = pem.as_bytes();
    let (key, family) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
        // ring verifies RSA signatures with 2048- to 8192-bit moduli only; a shorter key would
        // be stored and then fail every login. (A 2048-bit SubjectPublicKeyInfo is 294 bytes.)
        if label == "PUBLIC KEY" && der.len() < MIN_RSA_SPKI_LEN {
            return Err("RSA keys shorter than 2048 bits are not supported".into());
        }
        (k, Family::Rsa)
    } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
        (k, Family::Ed25519)
    } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
        let family = if contains(&der, OID_P256) {
            Family::EcP256
        } else if contains(&der, OID_P384) {
            Family::EcP384
        } else {
            return Err("unsupported elliptic curve (only P-256 and P-384 are supported)".into());
        };
        (k, family)
    } else {
        return Err(INVALID.into());
    };
    Ok(PublicKey {
        kid: None,
        alg: None,
        family,
        key,
    })
}

/// The verification keys of a JWKS document. Keys that cannot verify signatures here (`oct`,
/// `use: enc`, P-521, unknown types, malformed members) are skipped, as go-jose skips them.
pub fn parse_jwks(doc: &Value) -> Result<Vec<PublicKey>, String> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err("failed to decode keys: no \"keys\" array in the JWKS".into());
    };
    let mut out = Vec::new();
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Family::EcP256,
                EllipticCurve::P384 => Family::EcP384,
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => Family::Ed25519,
                _ => continue,
            },
            AlgorithmParameters::OctetKey(_) => continue,
        };
        let alg = match raw.get("alg").and_then(Value::as_str) {
            Some(a) => match a.parse::<Algorithm>() {
                Ok(alg) if family.allows(alg) => Some(alg),
                _ => continue,
            },
            None => None,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            key,
        });
    }
    Ok(out)
}

/// An HTTP client for one provider: rustls, and only `ca_pem`'s roots when it is set.
pub fn http_client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // An https provider's keys never come over plain HTTP (nor past `jwks_ca_pem`'s
            // pinning): a redirect from https to http is refused, unlike Go's client.
            let from_https = attempt
                .previous()
                .last()
                .is_some_and(|u| u.scheme() == "https");
            if from_https && attempt.url().scheme() != "https" {
                attempt.error("refusing a redirect from https to http")
            } else if attempt.previous().len() >= 10 {
                attempt.error("stopped after 10 redirects")
            } else {
                attempt.follow()
            }
        }));
    if !ca_pem.trim().is_empty() {
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or("could not parse CA PEM value successfully")?;
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| format!("failed to build HTTP client: {e}"))
}

/// GETs a JSON document (200 only, at most 1 MiB). Errors name what failed, never a body's
/// secrets (providers serve only public data here).
pub async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?;
    let status = resp.status();
    let too_large = || format!("response from {url:?} is larger than {MAX_BODY} bytes");
    // The limit bounds what is read, not only what is kept: a declared length over it is
    // refused unread, and a body is read a chunk at a time until it passes the limit.
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("unable to read response body: {e}"))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(body.get(..body.len().min(256)).unwrap_or(&[]));
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("could not unmarshal response as JSON: {e}"))
}

/// The error and its causes, joined (reqwest's top-level text alone hides TLS failures).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Fetches the discovery document under `issuer` and returns its `jwks_uri`, after checking
/// that its `issuer` is exactly the configured one.
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = fetch_json(client, &url).await.map_err(|e| {
        e.replace(
            "could not unmarshal",
            "failed to decode OIDC discovery document: could not unmarshal",
        )
    })?;
    let got = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if got != issuer {
        return Err(format!(
            "issuer did not match the returned issuer, expected {issuer:?} got {got:?}"
        ));
    }
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "discovery document has no jwks_uri".to_string())
}

/// The cached keys of a remote JWKS.
struct Snapshot {
    keys: Vec<PublicKey>,
    /// When these keys were fetched (`None`: never).
    fetched: Option<Instant>,
    /// Bumped at every successful fetch.
    generation: u64,
}

/// A remote JWKS with its cache.
pub struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises fetches; holds the time of the last fetch an unknown `kid` caused.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteKeys {
    /// A key set for `url`, fetched on first use.
    pub fn new(url: String, client: reqwest::Client) -> Self {
        RemoteKeys {
            url,
            client,
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: Vec::new(),
                fetched: None,
                generation: 0,
            }),
            refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// Fetches the JWKS now and replaces the cached keys (the config write's check). This does
    /// not count against the unknown-`kid` refresh budget.
    pub async fn fetch_now(&self) -> Result<usize, String> {
        let _serial = self.refresh.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, String> {
        let doc = fetch_json(&self.client, &self.url).await?;
        let keys = parse_jwks(&doc)?;
        let n = keys.len();
        let generation = self.snapshot.load().generation + 1;
        self.snapshot.store(Arc::new(Snapshot {
            keys,
            fetched: Some(Instant::now()),
            generation,
        }));
        Ok(n)
    }

    /// Refreshes unless another caller already did since `seen` (single flight) or the last
    /// attempt was under [`REFRESH_MIN_INTERVAL`] ago. Failures keep the cached keys.
    async fn refresh_after(&self, seen: u64) {
        let mut last = self.refresh.lock().await;
        if self.snapshot.load().generation != seen {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < REFRESH_MIN_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(jwks.url = %self.url, error = %e, "JWKS refresh failed; keeping the cached keys");
        }
    }

    /// The periodic pass: refreshes keys older than [`BACKGROUND_REFRESH`].
    pub async fn refresh_if_old(&self) {
        let snap = self.snapshot.load_full();
        if snap
            .fetched
            .is_some_and(|t| t.elapsed() < BACKGROUND_REFRESH)
        {
            return;
        }
        let _serial = self.refresh.lock().await;
        if self.snapshot.load().generation != snap.generation {
            return;
        }
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(jwks.url = %self.url, error = %e, "background JWKS refresh failed; keeping the cached keys");
        }
    }

    /// Verifies a signature with the cached keys, refreshing once as described in the module
    /// docs. True when some key verified it.
    pub async fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &str,
    ) -> bool {
        let snap = self.snapshot.load_full();
        let (known, ok) = Self::try_keys(&snap, kid, alg, message, signature);
        if ok {
            return true;
        }
        // A known kid whose key rejects the signature is a bad token, not a rotation.
        if known && kid.is_some() {
            return false;
        }
        self.refresh_after(snap.generation).await;
        let snap = self.snapshot.load_full();
        Self::try_keys(&snap, kid, alg, message, signature).1
    }

    /// `(kid known, verified)` against one snapshot; stale snapshots verify nothing.
    fn try_keys(
        snap: &Snapshot,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &str,
    ) -> (bool, bool) {
        if snap.fetched.is_none_or(|t| t.elapsed() > STALE_AFTER) {
            return (false, false);
        }
        let mut known = false;
        for k in &snap.keys {
            if kid.is_some() && k.kid.as_deref() != kid {
                continue;
            }
            known = true;
            if k.verify(alg, message, signature) {
                return (true, true);
            }
        }
        (known, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn families_never_allow_hmac_or_cross_family_algorithms() {
        for f in [Family::Rsa, Family::EcP256, Family::EcP384, Family::Ed25519] {
            for a in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                assert!(!f.allows(a));
            }
        }
        assert!(Family::Rsa.allows(Algorithm::PS512));
        assert!(!Family::Rsa.allows(Algorithm::ES256));
        assert!(!Family::EcP256.allows(Algorithm::ES384));
        assert!(Family::Ed25519.allows(Algorithm::EdDSA));
    }

    #[test]
    fn jwks_skips_oct_encryption_and_unknown_keys() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "OKP", "crv": "Ed25519", "use": "enc", "kid": "e",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ok",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]});
        let keys = parse_jwks(&doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ok"));
        assert!(parse_jwks(&json!({"nokeys": []})).is_err());
    }

    /// An Ed25519 key: its JWK (with `kid`) and a signer of base64url signatures.
    fn ed25519(kid: &str) -> (Value, impl Fn(&[u8]) -> String) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                         "x": URL_SAFE_NO_PAD.encode(kp.public_key_raw())});
        let enc = jsonwebtoken::EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).unwrap();
        (jwk, move |m: &[u8]| {
            jsonwebtoken::crypto::sign(m, &enc, Algorithm::EdDSA).unwrap()
        })
    }

    /// A JWKS served over real HTTP on loopback: the document (`None`: answer 500) and the
    /// number of fetches.
    async fn jwks_server(
        doc: Arc<std::sync::Mutex<Option<Value>>>,
        hits: Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, hits) = (doc.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match doc.lock().unwrap().clone() {
                        Some(d) => (axum::http::StatusCode::OK, d.to_string()),
                        None => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down".into()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/jwks")
    }

    /// The periodic pass picks up a rotation (a key the provider dropped stops verifying
    /// without any unknown `kid`), does nothing while the keys are fresh, and keys that could
    /// not be refreshed for a day verify nothing. The clock is moved with tokio's test clock;
    /// the fetches are real HTTP.
    #[tokio::test]
    async fn background_refresh_follows_rotation_and_stale_keys_verify_nothing() {
        use std::sync::atomic::Ordering::SeqCst;
        let (jwk_a, sign_a) = ed25519("a");
        let (jwk_b, sign_b) = ed25519("b");
        let doc = Arc::new(std::sync::Mutex::new(Some(json!({"keys": [jwk_a]}))));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = jwks_server(doc.clone(), hits.clone()).await;
        let keys = RemoteKeys::new(url, reqwest::Client::new());
        assert_eq!(keys.fetch_now().await, Ok(1));
        let msg = b"header.payload";
        let verify = |kid: &'static str, sig: String| {
            let keys = &keys;
            async move { keys.verify(Some(kid), Algorithm::EdDSA, msg, &sig).await }
        };
        assert!(verify("a", sign_a(msg)).await);

        // The provider rotates: b replaces a. Fresh keys are not fetched again.
        *doc.lock().unwrap() = Some(json!({"keys": [jwk_b]}));
        keys.refresh_if_old().await;
        assert_eq!(hits.load(SeqCst), 1);
        let advance = |by: Duration| async move {
            tokio::time::pause();
            tokio::time::advance(by).await;
            tokio::time::resume();
        };
        advance(BACKGROUND_REFRESH + Duration::from_secs(1)).await;
        keys.refresh_if_old().await;
        assert_eq!(hits.load(SeqCst), 2, "the periodic pass fetches old keys");
        assert!(verify("b", sign_b(msg)).await);
        assert_eq!(hits.load(SeqCst), 2, "a known kid needs no fetch");
        // a is gone: its kid is unknown, one refresh (still b only), refused.
        assert!(!verify("a", sign_a(msg)).await);
        assert_eq!(hits.load(SeqCst), 3);

        // The provider goes down: the cached keys still verify...
        *doc.lock().unwrap() = None;
        advance(BACKGROUND_REFRESH + Duration::from_secs(1)).await;
        keys.refresh_if_old().await;
        assert_eq!(hits.load(SeqCst), 4);
        assert!(verify("b", sign_b(msg)).await);
        // ...until they are a day old: then nothing verifies (fail closed).
        advance(STALE_AFTER).await;
        keys.refresh_if_old().await;
        assert!(!verify("b", sign_b(msg)).await);
        // Back up: the next refresh brings them back.
        *doc.lock().unwrap() = Some(json!({"keys": [jwk_b]}));
        keys.refresh_if_old().await;
        assert!(verify("b", sign_b(msg)).await);
    }

    #[test]
    fn pem_errors_use_vault_texts() {
        assert_eq!(
            parse_pem("garbage").err().unwrap(),
            "data does not contain any valid public keys"
        );
    }
}
