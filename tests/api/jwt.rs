//! JWT auth over real HTTP with real signed tokens: RSA (made by `openssl genpkey` at test time),
//! ECDSA P-256/P-384 and Ed25519 (rcgen). Static keys, and a JWKS/discovery provider served by
//! a loopback HTTP(S) server in the test (self-signed CA), with rotation and outage switches.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http_body_util::Full;
use hyper::body::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use coffer::clock::{Clock, unix_secs};

use crate::common::TestServer;

// ---------------------------------------------------------------------------------------------
// Keys and tokens

/// A signing key and its public forms.
#[derive(Clone)]
pub struct Signer {
    pub alg: Algorithm,
    pub kid: String,
    enc: EncodingKey,
    pub pub_pem: String,
    pub jwk: Value,
    /// The public key bytes a verifier may hold (PKCS#1 DER for RSA, the raw point or key for
    /// ECDSA/Ed25519): what an HS256 key-confusion forgery would use as its secret.
    pub raw_pub: Vec<u8>,
}

fn openssl_bytes(args: &[&str], stdin: Option<&str>) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl(args: &[&str], stdin: Option<&str>) -> String {
    String::from_utf8(openssl_bytes(args, stdin)).unwrap()
}

impl Signer {
    pub fn rsa(kid: &str) -> Signer {
        let private = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        );
        let pub_pem = openssl(&["pkey", "-pubout"], Some(&private));
        let modulus = openssl(&["rsa", "-pubin", "-noout", "-modulus"], Some(&pub_pem));
        let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
        let raw_pub = openssl_bytes(
            &["rsa", "-pubin", "-RSAPublicKey_out", "-outform", "DER"],
            Some(&pub_pem),
        );
        Signer {
            alg: Algorithm::RS256,
            kid: kid.into(),
            enc: EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
            pub_pem,
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(n), "e": "AQAB"}),
            raw_pub,
        }
    }

    fn ec(kid: &str, alg: Algorithm) -> Signer {
        let (ralg, crv, len) = match alg {
            Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32),
            _ => (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48),
        };
        let kp = rcgen::KeyPair::generate_for(ralg).unwrap();
        let raw = kp.public_key_raw();
        Signer {
            alg,
            kid: kid.into(),
            enc: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
            pub_pem: kp.public_key_pem(),
            jwk: json!({"kty": "EC", "kid": kid, "crv": crv,
                        "x": B64.encode(&raw[1..=len]), "y": B64.encode(&raw[len + 1..])}),
            raw_pub: raw.to_vec(),
        }
    }

    pub fn p256(kid: &str) -> Signer {
        Self::ec(kid, Algorithm::ES256)
    }

    pub fn p384(kid: &str) -> Signer {
        Self::ec(kid, Algorithm::ES384)
    }

    pub fn ed25519(kid: &str) -> Signer {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        Signer {
            alg: Algorithm::EdDSA,
            kid: kid.into(),
            enc: EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).unwrap(),
            pub_pem: kp.public_key_pem(),
            jwk: json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": B64.encode(kp.public_key_raw())}),
            raw_pub: kp.public_key_raw().to_vec(),
        }
    }

    /// A compact JWS of `claims` with this key (header `kid` set).
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }

    /// Signs with another algorithm of the same key family (RSA: RS*/PS*).
    pub fn sign_as(&self, alg: Algorithm, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }

    /// Signs with this key's algorithm under a header of `extra` fields (any JSON at all).
    pub fn sign_header(&self, mut extra: Value, claims: &Value) -> String {
        extra["alg"] = json!(format!("{:?}", self.alg));
        let input = format!(
            "{}.{}",
            B64.encode(extra.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.enc, self.alg).unwrap();
        format!("{input}.{sig}")
    }

    /// Signs without a `kid` header.
    pub fn sign_no_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.enc).unwrap()
    }
}

/// A token assembled by hand: any header, any payload, any signature bytes.
fn raw_token(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(sig)
    )
}

/// HMAC-SHA256 of `msg` under `key`, through jsonwebtoken (the attacker's "HS256 with the public
/// key as secret" token).
fn hs_token(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

pub fn now(srv: &TestServer) -> i64 {
    unix_secs(srv.clock.now())
}

// ---------------------------------------------------------------------------------------------
// A loopback OIDC provider: discovery document and JWKS, plain HTTP or HTTPS with its own CA.

pub struct ProviderState {
    pub jwks: Mutex<Value>,
    /// Where `/redirect` sends the client (302).
    pub redirect_to: Mutex<String>,
    pub issuer: Mutex<String>,
    pub up: AtomicBool,
    pub jwks_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
}

pub struct Provider {
    pub base: String,
    pub ca_pem: Option<String>,
    pub state: Arc<ProviderState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Provider {
    pub fn set_keys(&self, keys: &[&Signer]) {
        let list: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.state.jwks.lock().unwrap() = json!({ "keys": list });
    }

    pub fn hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }
}

async fn provider_handle(
    state: Arc<ProviderState>,
    base: String,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let reply = |code: u16, body: String| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok(r)
    };
    match req.uri().path() {
        "/.well-known/openid-configuration" => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            if !state.up.load(Ordering::SeqCst) {
                return reply(503, "provider down".into());
            }
            let issuer = state.issuer.lock().unwrap().clone();
            reply(
                200,
                json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks")}).to_string(),
            )
        }
        "/redirect" => {
            let mut r = hyper::Response::new(Full::new(Bytes::new()));
            *r.status_mut() = hyper::StatusCode::FOUND;
            let to = state.redirect_to.lock().unwrap().clone();
            r.headers_mut().insert("location", to.parse().unwrap());
            Ok(r)
        }
        "/jwks" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            if !state.up.load(Ordering::SeqCst) {
                return reply(503, "provider down".into());
            }
            let body = state.jwks.lock().unwrap().to_string();
            reply(200, body)
        }
        _ => reply(404, "{}".into()),
    }
}

/// Starts a provider on 127.0.0.1; with `tls`, behind a certificate from a fresh CA.
pub async fn provider(tls: bool) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if tls { "https" } else { "http" };
    let base = format!("{scheme}://127.0.0.1:{}", addr.port());
    let state = Arc::new(ProviderState {
        jwks: Mutex::new(json!({"keys": []})),
        redirect_to: Mutex::new(String::new()),
        issuer: Mutex::new(base.clone()),
        up: AtomicBool::new(true),
        jwks_hits: AtomicUsize::new(0),
        discovery_hits: AtomicUsize::new(0),
    });
    let (acceptor, ca_pem) = if tls {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "coffer test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        (
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            Some(ca.pem()),
        )
    } else {
        (None, None)
    };
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let b = base.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                _ = &mut rx => return,
            };
            let (st, b, acceptor) = (st.clone(), b.clone(), acceptor.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    provider_handle(st.clone(), b.clone(), req)
                });
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    }
                }
            });
        }
    });
    Provider {
        base,
        ca_pem,
        state,
        _stop: tx,
    }
}

// ---------------------------------------------------------------------------------------------
// Server set-up helpers

pub async fn enable(srv: &TestServer, path: &str, kind: &str) {
    srv.post(
        &format!("sys/auth/{path}"),
        &srv.root,
        json!({"type": kind}),
    )
    .await
    .assert_status(204);
}

pub async fn login(srv: &TestServer, mount: &str, role: &str, jwt: &str) -> crate::common::Resp {
    srv.req(
        "POST",
        &format!("auth/{mount}/login"),
        None,
        Some(json!({"role": role, "jwt": jwt})),
    )
    .await
}

const ISSUER: &str = "https://ci.example";

/// The claims of a well-formed CI token at `now`.
fn base_claims(now: i64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "repo:org/app:ref:refs/heads/main",
        "aud": "coffer",
        "iat": now,
        "nbf": now - 600,
        "exp": now + 300,
        "project_path": "group/app",
        "nested": {"env": "prod"},
        "build_number": 42,
        "ref_protected": "true",
        "groups": ["a", "b"],
        "user": {"name": "alice"},
    })
}

/// The roles the token table logs in against.
async fn table_roles(srv: &TestServer, mount: &str) {
    let roles = [
        (
            "ci",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "bound_claims": {"project_path": "group/app"},
            "claim_mappings": {"project_path": "project", "/nested/env": "env"},
            "token_policies": "ci-read", "token_ttl": "1h"}),
        ),
        (
            "glob",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["coffer"],
            "bound_claims_type": "glob", "bound_claims": {"sub": "repo:org/*:ref:refs/heads/main"}}),
        ),
        (
            "noaud",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "repo:org/app:ref:refs/heads/main"}),
        ),
        (
            "subj",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "bound_subject": "repo:org/app:ref:refs/heads/main"}),
        ),
        (
            "nums",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "bound_claims": {"build_number": 42, "ref_protected": "true"}}),
        ),
        (
            "groups",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer", "groups_claim": "groups"}),
        ),
        (
            "anyof",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "bound_claims": {"groups": ["b", "z"]}}),
        ),
        (
            "strict",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "clock_skew_leeway": -1, "expiration_leeway": -1}),
        ),
        (
            "ptr",
            json!({"role_type": "jwt", "user_claim": "/user/name", "user_claim_json_pointer": true,
            "bound_audiences": "coffer"}),
        ),
        (
            "browser",
            json!({"role_type": "oidc", "user_claim": "sub", "allowed_redirect_uris": "https://ui.example/cb"}),
        ),
    ];
    for (name, body) in roles {
        let r = srv
            .post(&format!("auth/{mount}/role/{name}"), &srv.root, body)
            .await;
        assert!(
            r.status == 204 || r.status == 200,
            "role {name}: {}",
            r.text
        );
    }
}

/// One crafted token: (row name, mount, role, token, expected error or None for success).
type Row = (String, &'static str, &'static str, String, Option<String>);

/// Mutates base claims.
fn with(now: i64, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = base_claims(now);
    f(c.as_object_mut().unwrap());
    c
}

const NO_KEY: &str = "error validating token: error verifying token signature: no known key successfully validated the token signature";

#[allow(clippy::too_many_lines, reason = "the table is the test")]
fn token_table(k: &Signer, other: &Signer, now: i64) -> Vec<Row> {
    let ok = |c: &Value| k.sign(c);
    let err = |s: &str| Some(s.to_string());
    let v = |s: &str| Some(format!("error validating token: {s}"));
    let mut rows: Vec<Row> = vec![
        ("valid".into(), "jwt", "ci", ok(&base_claims(now)), None),
        (
            "role name is case-insensitive".into(),
            "jwt",
            "CI",
            ok(&base_claims(now)),
            None,
        ),
        (
            "no kid header".into(),
            "jwt",
            "ci",
            k.sign_no_kid(&base_claims(now)),
            None,
        ),
        (
            "aud list containing the bound audience".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("aud".into(), json!(["x", "coffer"]));
            })),
            None,
        ),
        (
            "aud list without the bound audience".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("aud".into(), json!(["x", "y"]));
            })),
            v("invalid audience (aud) claim: audience claim does not match any expected audience"),
        ),
        (
            "aud missing on a role with bound_audiences".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("aud");
            })),
            v("invalid audience (aud) claim: audience claim does not match any expected audience"),
        ),
        (
            "string aud on a role without bound_audiences (CVE-2024-5798)".into(),
            "jwt",
            "noaud",
            ok(&base_claims(now)),
            err("audience claim found in JWT but no audiences bound to the role"),
        ),
        (
            "list aud on a role without bound_audiences".into(),
            "jwt",
            "noaud",
            ok(&with(now, |c| {
                c.insert("aud".into(), json!(["coffer"]));
            })),
            err("audience claim found in JWT but no audiences bound to the role"),
        ),
        (
            "no aud on a role without bound_audiences".into(),
            "jwt",
            "noaud",
            ok(&with(now, |c| {
                c.remove("aud");
            })),
            None,
        ),
        (
            "empty aud list on a role without bound_audiences".into(),
            "jwt",
            "noaud",
            ok(&with(now, |c| {
                c.insert("aud".into(), json!([]));
            })),
            None,
        ),
        (
            "wrong iss".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("iss".into(), json!("https://evil.example"));
            })),
            v("invalid issuer (iss) claim"),
        ),
        (
            "iss with a trailing slash".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("iss".into(), json!("https://ci.example/"));
            })),
            v("invalid issuer (iss) claim"),
        ),
        (
            "no iss".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("iss");
            })),
            v("invalid issuer (iss) claim"),
        ),
        (
            "bound subject matches".into(),
            "jwt",
            "subj",
            ok(&base_claims(now)),
            None,
        ),
        (
            "bound subject differs".into(),
            "jwt",
            "subj",
            ok(&with(now, |c| {
                c.insert("sub".into(), json!("repo:org/app:pull_request"));
            })),
            v("invalid subject (sub) claim"),
        ),
        (
            "expired beyond the 60 s skew".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("exp".into(), json!(now - 61));
            })),
            v("invalid expiration time (exp) claim: token is expired"),
        ),
        (
            "expired within the skew".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("exp".into(), json!(now - 59));
            })),
            None,
        ),
        (
            "nbf beyond the skew".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("nbf".into(), json!(now + 61));
            })),
            v("invalid not before (nbf) claim: token not yet valid"),
        ),
        (
            "nbf within the skew".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("nbf".into(), json!(now + 59));
            })),
            None,
        ),
        (
            "iat in the future".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("iat".into(), json!(now + 120));
            })),
            v("invalid issued at (iat) claim: token issued in the future"),
        ),
        (
            "no iat, nbf or exp".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("iat");
                c.remove("nbf");
                c.remove("exp");
            })),
            v("no issued at (iat), not before (nbf), or expiration time (exp) claims in token"),
        ),
        (
            "iat only, within expiration_leeway".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("nbf");
                c.remove("exp");
                c.insert("iat".into(), json!(now - 200));
            })),
            None,
        ),
        (
            "iat only, past expiration_leeway + skew".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("nbf");
                c.remove("exp");
                c.insert("iat".into(), json!(now - 211));
            })),
            v("invalid expiration time (exp) claim: token is expired"),
        ),
        (
            "exp only".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("nbf");
                c.remove("iat");
                c.insert("exp".into(), json!(now + 100));
            })),
            None,
        ),
        (
            "leeways disabled: iat only is already expired".into(),
            "jwt",
            "strict",
            ok(&with(now, |c| {
                c.remove("nbf");
                c.remove("exp");
                c.insert("iat".into(), json!(now - 1));
            })),
            v("invalid expiration time (exp) claim: token is expired"),
        ),
        (
            "leeways disabled: 1 s past exp".into(),
            "jwt",
            "strict",
            ok(&with(now, |c| {
                c.insert("exp".into(), json!(now - 1));
            })),
            v("invalid expiration time (exp) claim: token is expired"),
        ),
        (
            "alg none, empty signature".into(),
            "jwt",
            "ci",
            raw_token(
                &json!({"alg": "none", "typ": "JWT"}),
                &base_claims(now),
                b"",
            ),
            err(NO_KEY),
        ),
        (
            "alg none with a signature".into(),
            "jwt",
            "ci",
            raw_token(&json!({"alg": "none"}), &base_claims(now), b"sig"),
            err(NO_KEY),
        ),
        (
            "HS256 keyed with the public key PEM".into(),
            "jwt",
            "ci",
            hs_token(Algorithm::HS256, k.pub_pem.as_bytes(), &base_claims(now)),
            err(NO_KEY),
        ),
        (
            "HS512 keyed with the public key PEM".into(),
            "jwt",
            "ci",
            hs_token(Algorithm::HS512, k.pub_pem.as_bytes(), &base_claims(now)),
            err(NO_KEY),
        ),
        (
            "HS256 keyed with the verifier's public key bytes".into(),
            "jwt",
            "ci",
            hs_token(Algorithm::HS256, &k.raw_pub, &base_claims(now)),
            err(NO_KEY),
        ),
        (
            "HS384 keyed with the verifier's public key bytes".into(),
            "jwt",
            "ci",
            hs_token(Algorithm::HS384, &k.raw_pub, &base_claims(now)),
            err(NO_KEY),
        ),
        (
            "signed by an unknown key of the same type".into(),
            "jwt",
            "ci",
            other.sign(&base_claims(now)),
            err(NO_KEY),
        ),
        (
            "payload swapped after signing".into(),
            "jwt",
            "ci",
            {
                let t = ok(&base_claims(now));
                let parts: Vec<&str> = t.split('.').collect();
                let forged = B64.encode(
                    with(now, |c| {
                        c.insert("project_path".into(), json!("group/other"));
                    })
                    .to_string(),
                );
                format!("{}.{forged}.{}", parts[0], parts[2])
            },
            err(NO_KEY),
        ),
        (
            "header alg changed after signing".into(),
            "jwt",
            "ci",
            {
                let t = ok(&base_claims(now));
                let parts: Vec<&str> = t.split('.').collect();
                let h = B64.encode(json!({"alg": "PS384", "kid": k.kid}).to_string());
                format!("{h}.{}.{}", parts[1], parts[2])
            },
            err(NO_KEY),
        ),
        (
            "two segments".into(),
            "jwt",
            "ci",
            "abc.def".into(),
            v(
                "error verifying token signature: go-jose/go-jose: compact JWS format must have three parts",
            ),
        ),
        (
            "four segments".into(),
            "jwt",
            "ci",
            format!("{}.x", ok(&base_claims(now))),
            v(
                "error verifying token signature: go-jose/go-jose: compact JWS format must have three parts",
            ),
        ),
        (
            "algorithm outside jwt_supported_algs".into(),
            "jwt-strict",
            "ci",
            ok(&base_claims(now)),
            v("invalid algorithm (alg) header parameter: token signed with unexpected algorithm"),
        ),
        (
            "homoglyph of sub".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("ſub".into(), json!("repo:org/other:ref:refs/heads/main"));
            })),
            v(
                "ambiguous claim: key \"ſub\" collides with registered claim \"sub\" under case folding",
            ),
        ),
        (
            "user claim through a JSON pointer".into(),
            "jwt",
            "ptr",
            ok(&base_claims(now)),
            None,
        ),
        (
            "user claim missing".into(),
            "jwt",
            "ptr",
            ok(&with(now, |c| {
                c.remove("user");
            })),
            err("claim \"/user/name\" not found in token"),
        ),
        (
            "user claim not a string".into(),
            "jwt",
            "ptr",
            ok(&with(now, |c| {
                c.insert("user".into(), json!({"name": 7}));
            })),
            err("claim \"/user/name\" could not be converted to string"),
        ),
        (
            "claim mapping source not a string".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("nested".into(), json!({"env": 5}));
            })),
            err("error converting claim '/nested/env' to string"),
        ),
        (
            "bound claim missing".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.remove("project_path");
            })),
            err("error validating claims: claim \"project_path\" is missing"),
        ),
        (
            "bound claim differs".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("project_path".into(), json!("group/other"));
            })),
            err(
                "error validating claims: claim \"project_path\" does not match any associated bound claim values",
            ),
        ),
        (
            "claim mapping runs before bound claims".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("project_path".into(), json!({"a": 1}));
            })),
            err("error converting claim 'project_path' to string"),
        ),
        (
            "bound claim object".into(),
            "jwt",
            "anyof",
            ok(&with(now, |c| {
                c.insert("groups".into(), json!({"a": 1}));
            })),
            err(
                "error validating claims: received claim is not a string, bool, int or list: map[a:1]",
            ),
        ),
        (
            "typed bound claims match".into(),
            "jwt",
            "nums",
            ok(&base_claims(now)),
            None,
        ),
        (
            "fractional number truncated to the bound integer".into(),
            "jwt",
            "nums",
            ok(&with(now, |c| {
                c.insert("build_number".into(), json!(42.9));
            })),
            None,
        ),
        (
            "bool true is not the string \"true\"".into(),
            "jwt",
            "nums",
            ok(&with(now, |c| {
                c.insert("ref_protected".into(), json!(true));
            })),
            err(
                "error validating claims: claim \"ref_protected\" does not match any associated bound claim values",
            ),
        ),
        (
            "string \"42\" is not the number 42".into(),
            "jwt",
            "nums",
            ok(&with(now, |c| {
                c.insert("build_number".into(), json!("42"));
            })),
            err(
                "error validating claims: claim \"build_number\" does not match any associated bound claim values",
            ),
        ),
        (
            "glob matches across / and :".into(),
            "jwt",
            "glob",
            ok(&base_claims(now)),
            None,
        ),
        (
            "glob does not match an environment subject".into(),
            "jwt",
            "glob",
            ok(&with(now, |c| {
                c.insert("sub".into(), json!("repo:org/app:environment:prod"));
            })),
            err(
                "error validating claims: claim \"sub\" does not match any associated bound claim values",
            ),
        ),
        (
            "list claim any-of-any".into(),
            "jwt",
            "anyof",
            ok(&base_claims(now)),
            None,
        ),
        (
            "list claim with no common element".into(),
            "jwt",
            "anyof",
            ok(&with(now, |c| {
                c.insert("groups".into(), json!(["c"]));
            })),
            err(
                "error validating claims: claim \"groups\" does not match any associated bound claim values",
            ),
        ),
        (
            "groups claim present".into(),
            "jwt",
            "groups",
            ok(&base_claims(now)),
            None,
        ),
        (
            "groups claim missing".into(),
            "jwt",
            "groups",
            ok(&with(now, |c| {
                c.remove("groups");
            })),
            err("failed to fetch groups: \"groups\" claim not found in token"),
        ),
        (
            "groups claim not a list".into(),
            "jwt",
            "groups",
            ok(&with(now, |c| {
                c.insert("groups".into(), json!({"a": "b"}));
            })),
            err("\"groups\" claim could not be converted to string list"),
        ),
        (
            "oidc role".into(),
            "jwt",
            "browser",
            ok(&base_claims(now)),
            err("role with oidc role_type is not allowed"),
        ),
        (
            "unknown role".into(),
            "jwt",
            "nope",
            ok(&base_claims(now)),
            err("role \"nope\" could not be found"),
        ),
        (
            "empty token".into(),
            "jwt",
            "ci",
            String::new(),
            err("missing token"),
        ),
        (
            "exp past int64 (Go's conversion makes it the far past)".into(),
            "jwt",
            "ci",
            ok(&with(now, |c| {
                c.insert("exp".into(), json!(1e300));
            })),
            v("invalid expiration time (exp) claim: token is expired"),
        ),
        (
            "crit names an extension nobody here understands".into(),
            "jwt",
            "ci",
            k.sign_header(
                json!({"kid": k.kid, "crit": ["zzz"], "zzz": 1}),
                &base_claims(now),
            ),
            err(NO_KEY),
        ),
        (
            "crit is not a list".into(),
            "jwt",
            "ci",
            k.sign_header(json!({"kid": k.kid, "crit": "b64"}), &base_claims(now)),
            err(NO_KEY),
        ),
        (
            "unencoded payload (b64 false)".into(),
            "jwt",
            "ci",
            k.sign_header(
                json!({"kid": k.kid, "crit": ["b64"], "b64": false}),
                &base_claims(now),
            ),
            err(NO_KEY),
        ),
        (
            "crit naming b64, payload encoded as usual".into(),
            "jwt",
            "ci",
            k.sign_header(
                json!({"kid": k.kid, "crit": ["b64"], "b64": true}),
                &base_claims(now),
            ),
            None,
        ),
    ];
    for (name, ..) in &mut rows {
        *name = format!("{:?}: {name}", k.alg);
    }
    rows
}

/// Every key type, every row: accepted, or refused with Vault's exact text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_tokens_are_accepted_or_refused_with_vault_texts() {
    let srv = TestServer::start().await;
    let signers = [
        Signer::rsa("r1"),
        Signer::p256("p1"),
        Signer::p384("q1"),
        Signer::ed25519("e1"),
    ];
    let others = [
        Signer::rsa("r2"),
        Signer::p256("p2"),
        Signer::p384("q2"),
        Signer::ed25519("e2"),
    ];
    let pems: Vec<&str> = signers.iter().map(|s| s.pub_pem.as_str()).collect();
    for (mount, algs) in [("jwt", json!([])), ("jwt-strict", json!(["PS512"]))] {
        enable(&srv, mount, "jwt").await;
        srv.post(
            &format!("auth/{mount}/config"),
            &srv.root,
            json!({
                "jwt_validation_pubkeys": pems, "bound_issuer": ISSUER, "jwt_supported_algs": algs,
            }),
        )
        .await
        .assert_status(204);
        table_roles(&srv, mount).await;
    }
    let now = now(&srv);
    let mut count = 0;
    for (k, other) in signers.iter().zip(&others) {
        for (name, mount, role, token, want) in token_table(k, other, now) {
            let r = login(&srv, mount, role, &token).await;
            match want {
                None => {
                    assert_eq!(r.status, 200, "{name}: {}", r.text);
                    assert!(
                        r.body["auth"]["client_token"]
                            .as_str()
                            .unwrap()
                            .starts_with("hvs."),
                        "{name}"
                    );
                }
                Some(text) => {
                    assert_eq!(r.status, 400, "{name}: {}", r.text);
                    assert_eq!(r.errors(), vec![text], "{name}");
                }
            }
            count += 1;
        }
    }
    assert!(count >= 4 * 40, "{count} rows");
    // Every RSA algorithm, PKCS#1 v1.5 and PSS, with the same key.
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let t = signers[0].sign_as(alg, &base_claims(now));
        login(&srv, "jwt", "ci", &t).await.assert_status(200);
    }
    // No configuration and no role: the first two checks.
    enable(&srv, "jwt-empty", "jwt").await;
    let r = login(&srv, "jwt-empty", "ci", "x.y.z").await;
    assert_eq!(r.errors(), vec!["could not load configuration"]);
    let r = srv
        .req(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"jwt": "x.y.z"})),
        )
        .await;
    assert_eq!(r.errors(), vec!["missing role"]);
}

/// Discovery over HTTPS with a private CA; JWKS cached (no fetch per login), rotation picked up
/// by one refresh on an unknown `kid`, further unknown `kid`s within 10 s refused without a
/// fetch (also when many arrive at once), and cached keys keep working while the provider is
/// down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discovery_over_https_caches_rotates_and_survives_outage() {
    let srv = TestServer::start().await;
    let p = provider(true).await;
    let k1 = Signer::rsa("k1");
    let k2 = Signer::p256("k2");
    p.set_keys(&[&k1]);
    enable(&srv, "jwt", "jwt").await;

    // Without the CA the provider's certificate is not trusted.
    let r = srv
        .post(
            "auth/jwt/config",
            &srv.root,
            json!({"oidc_discovery_url": p.base}),
        )
        .await;
    r.assert_status(400);
    assert!(
        r.errors()[0].starts_with("error checking oidc discovery URL: "),
        "{}",
        r.text
    );
    srv.post(
        "auth/jwt/config",
        &srv.root,
        json!({"oidc_discovery_url": p.base, "oidc_discovery_ca_pem": p.ca_pem, "default_role": "CI"}),
    )
    .await
    .assert_status(204);
    let cfg = srv.get("auth/jwt/config", &srv.root).await;
    cfg.assert_status(200);
    assert_eq!(cfg.body["data"]["status"], "valid");
    assert_eq!(cfg.body["data"]["default_role"], "ci");
    assert_eq!(cfg.body["data"]["oidc_discovery_url"], p.base.as_str());
    srv.post(
        "auth/jwt/role/ci",
        &srv.root,
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer", "token_policies": "ci"}),
    )
    .await
    .assert_status(204);

    let now = now(&srv);
    let mut claims = base_claims(now);
    claims["iss"] = json!(p.base);
    let hits_after_write = p.hits();
    assert_eq!(
        hits_after_write, 1,
        "the config write fetched the JWKS once"
    );
    for _ in 0..25 {
        // Empty role: the default role (written as "CI", stored lower-cased).
        login(&srv, "jwt", "", &k1.sign(&claims))
            .await
            .assert_status(200);
    }
    assert_eq!(p.hits(), hits_after_write, "no fetch for a known kid");

    // Rotation: k1 retired, k2 published. The first k2 login refreshes once and succeeds.
    p.set_keys(&[&k2]);
    login(&srv, "jwt", "ci", &k2.sign(&claims))
        .await
        .assert_status(200);
    assert_eq!(p.hits(), hits_after_write + 1);
    // k1 is still cached under its kid until the next refresh: keys are replaced, not merged,
    // so it is gone now.
    let r = login(&srv, "jwt", "ci", &k1.sign(&claims)).await;
    assert_eq!(
        r.errors(),
        vec![
            "error validating token: error verifying token signature: failed to verify id token signature"
        ]
    );
    // Unknown kids within 10 s of that refresh: refused, and no fetch — even 20 at once.
    let k3 = Signer::ed25519("k3");
    let logins = (0..20).map(|_| {
        let t = k3.sign(&claims);
        let srv = &srv;
        async move { login(srv, "jwt", "ci", &t).await }
    });
    for r in futures_join_all(logins).await {
        assert_eq!(
            r.errors(),
            vec![
                "error validating token: error verifying token signature: failed to verify id token signature"
            ]
        );
    }
    assert_eq!(
        p.hits(),
        hits_after_write + 1,
        "at most one refresh per 10 s"
    );

    // Provider down: cached keys keep working.
    p.set_up(false);
    for _ in 0..5 {
        login(&srv, "jwt", "ci", &k2.sign(&claims))
            .await
            .assert_status(200);
    }
    // A config write cannot be checked against a provider that is down...
    let r = srv
        .post(
            "auth/jwt/config",
            &srv.root,
            json!({"oidc_discovery_url": p.base, "oidc_discovery_ca_pem": p.ca_pem}),
        )
        .await;
    assert!(
        r.errors()[0].starts_with("error checking oidc discovery URL: 503 Service Unavailable"),
        "{}",
        r.text
    );
    // ...and the refused write left the working configuration alone.
    login(&srv, "jwt", "ci", &k2.sign(&claims))
        .await
        .assert_status(200);
    // skip_jwks_validation stores it with a warning.
    let r = srv
        .post(
            "auth/jwt/config",
            &srv.root,
            json!({"oidc_discovery_url": p.base, "oidc_discovery_ca_pem": p.ca_pem, "skip_jwks_validation": true}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["error checking oidc discovery URL"])
    );
    // The stored config has no key set yet and the provider is down: the first login tries
    // discovery once; the failure is then answered from memory for 10 s.
    let before = p.state.discovery_hits.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(
            login(&srv, "jwt", "ci", &k2.sign(&claims)).await.errors(),
            vec!["error configuring token validator: 503 Service Unavailable: provider down"]
        );
    }
    assert_eq!(p.state.discovery_hits.load(Ordering::SeqCst), before + 1);
    p.set_up(true);
    srv.post(
        "auth/jwt/config",
        &srv.root,
        json!({"oidc_discovery_url": p.base, "oidc_discovery_ca_pem": p.ca_pem}),
    )
    .await
    .assert_status(204);
    login(&srv, "jwt", "ci", &k2.sign(&claims))
        .await
        .assert_status(200);

    // Discovery whose document names another issuer.
    *p.state.issuer.lock().unwrap() = format!("{}/", p.base);
    let r = srv
        .post(
            "auth/jwt/config",
            &srv.root,
            json!({"oidc_discovery_url": p.base, "oidc_discovery_ca_pem": p.ca_pem}),
        )
        .await;
    assert_eq!(
        r.errors(),
        vec![format!(
            "error checking oidc discovery URL: issuer did not match the returned issuer, expected {:?} got {:?}",
            p.base,
            format!("{}/", p.base)
        )]
    );
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    fs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(f);
    }
    let mut out = Vec::with_capacity(set.len());
    let pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    // Poll all together: join through tokio's JoinSet is not possible for borrowed futures.
    let results = join_boxed(pinned).await;
    out.extend(results);
    out
}

async fn join_boxed<F: std::future::Future + Unpin>(mut fs: Vec<F>) -> Vec<F::Output> {
    let mut outs: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(outs.iter_mut()) {
            if o.is_none() {
                match std::pin::Pin::new(&mut *f).poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().map(Option::unwrap).collect()
}

/// `jwks_url` over plain HTTP and over HTTPS with `jwks_ca_pem`; write-time checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_config_checks_and_logins() {
    let srv = TestServer::start().await;
    let plain = provider(false).await;
    let tls = provider(true).await;
    let k = Signer::ed25519("e1");
    plain.set_keys(&[&k]);
    tls.set_keys(&[&k]);
    enable(&srv, "jwt", "jwt").await;
    let cfg = |body: Value| {
        let srv = &srv;
        async move { srv.post("auth/jwt/config", &srv.root, body).await }
    };
    // Exactly one key source.
    for body in [
        json!({}),
        json!({"jwks_url": plain.base, "jwt_validation_pubkeys": [k.pub_pem]}),
        json!({"jwks_url": plain.base, "oidc_discovery_url": plain.base}),
    ] {
        assert_eq!(
            cfg(body).await.errors(),
            vec![
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set"
            ]
        );
    }
    assert_eq!(
        cfg(json!({"jwt_validation_pubkeys": ["not a key"]}))
            .await
            .errors(),
        vec!["error parsing public key: data does not contain any valid public keys"]
    );
    assert_eq!(
        cfg(json!({"jwt_validation_pubkeys": [format!("{}junk", k.pub_pem)]}))
            .await
            .errors(),
        vec!["error parsing public key: unexpected trailing data after parsed PEM block"]
    );
    let short = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
        None,
    );
    let short_pub = openssl(&["pkey", "-pubout"], Some(&short));
    assert_eq!(
        cfg(json!({"jwt_validation_pubkeys": [short_pub]}))
            .await
            .errors(),
        vec!["error parsing public key: RSA keys shorter than 2048 bits are not supported"]
    );
    assert_eq!(
        cfg(json!({"oidc_discovery_url": format!("{}/.well-known/openid-configuration", plain.base)})).await.errors(),
        vec!["'oidc_discovery_url' contains '.well-known' component"]
    );
    assert_eq!(
        cfg(json!({"jwks_url": plain.base, "jwt_supported_algs": ["HS256"]}))
            .await
            .errors(),
        vec!["invalid jwt_supported_algs: unsupported signing algorithm \"HS256\""]
    );
    assert_eq!(
        cfg(json!({"jwks_url": format!("{}/missing", plain.base)}))
            .await
            .errors(),
        vec!["error checking jwks URL"]
    );
    assert_eq!(
        cfg(json!({"jwks_url": format!("{}/jwks", tls.base)}))
            .await
            .errors(),
        vec!["error checking jwks URL"],
        "system roots do not trust the test CA"
    );
    assert_eq!(
        cfg(json!({"jwks_url": format!("{}/jwks", tls.base), "jwks_ca_pem": "not a pem"}))
            .await
            .errors(),
        vec!["error checking jwks_ca_pem"]
    );
    assert_eq!(
        cfg(json!({"jwks_url": format!("{}/jwks", tls.base), "oidc_client_id": "x"}))
            .await
            .errors(),
        vec!["both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"]
    );
    // Nothing was stored by the refused writes.
    srv.get("auth/jwt/config", &srv.root)
        .await
        .assert_status(404);

    let role = json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer"});
    let now = now(&srv);
    for (base, ca) in [
        (plain.base.clone(), None),
        (tls.base.clone(), tls.ca_pem.clone()),
    ] {
        let mut body = json!({"jwks_url": format!("{base}/jwks"), "bound_issuer": ISSUER});
        if let Some(ca) = ca {
            body["jwks_ca_pem"] = json!(ca);
        }
        cfg(body).await.assert_status(204);
        srv.post("auth/jwt/role/ci", &srv.root, role.clone())
            .await
            .assert_status(204);
        login(&srv, "jwt", "ci", &k.sign(&base_claims(now)))
            .await
            .assert_status(200);
    }
    let read = srv.get("auth/jwt/config", &srv.root).await;
    assert_eq!(read.body["data"]["jwks_ca_pem"], json!(tls.ca_pem));
    assert_eq!(read.body["data"]["status"], "valid");
}

async fn static_mount(srv: &TestServer, mount: &str, k: &Signer, extra: Value) {
    enable(srv, mount, "jwt").await;
    let mut body = json!({"jwt_validation_pubkeys": [k.pub_pem], "bound_issuer": ISSUER});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    srv.post(&format!("auth/{mount}/config"), &srv.root, body)
        .await
        .assert_status(204);
}

/// The whole `auth` block, the token's view of it, renewal against the current role, and the
/// role's `token_bound_cidrs` checked at login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_issues_a_token_shaped_by_the_role_and_renews_against_it() {
    let srv = TestServer::start().await;
    let k = Signer::p256("k");
    static_mount(&srv, "jwt", &k, json!({})).await;
    srv.post(
        "auth/jwt/role/ci",
        &srv.root,
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
            "claim_mappings": {"project_path": "project", "/nested/env": "env"},
            "token_policies": "ci-read", "token_ttl": "1h", "token_max_ttl": "2h",
        }),
    )
    .await
    .assert_status(204);
    let token = k.sign(&base_claims(now(&srv)));
    let r = login(&srv, "jwt", "ci", &token).await;
    r.assert_status(200);
    let auth = &r.body["auth"];
    assert_eq!(auth["policies"], json!(["ci-read", "default"]));
    assert_eq!(auth["token_policies"], json!(["ci-read", "default"]));
    assert_eq!(
        auth["metadata"],
        json!({"role": "ci", "project": "group/app", "env": "prod"})
    );
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["orphan"], true);
    assert!(!auth["entity_id"].as_str().unwrap().is_empty());
    assert_eq!(r.body["lease_duration"], 0);
    assert_eq!(r.body["renewable"], false);
    assert!(r.body["data"].is_null());
    let client = auth["client_token"].as_str().unwrap().to_string();

    // The same subject maps to the same entity.
    let again = login(&srv, "jwt", "ci", &token).await;
    assert_eq!(again.body["auth"]["entity_id"], auth["entity_id"]);

    let me = srv.get("auth/token/lookup-self", &client).await;
    me.assert_status(200);
    assert_eq!(
        me.body["data"]["display_name"],
        "jwt-repo:org/app:ref:refs/heads/main"
    );
    assert_eq!(
        me.body["data"]["meta"],
        json!({"role": "ci", "project": "group/app", "env": "prod"})
    );
    assert_eq!(me.body["data"]["path"], "auth/jwt/login");

    // Renewal reads the current role.
    let r = srv
        .post(
            "auth/jwt/role/ci",
            &srv.root,
            json!({"role_type": "jwt", "token_ttl": "30m"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["bindings kept from the stored role (not in this request): bound_audiences"])
    );
    let renewed = srv.post("auth/token/renew-self", &client, json!({})).await;
    renewed.assert_status(200);
    assert_eq!(renewed.body["auth"]["lease_duration"], 1800);
    srv.delete("auth/jwt/role/ci", &srv.root)
        .await
        .assert_status(204);
    let gone = srv.post("auth/token/renew-self", &client, json!({})).await;
    assert!(
        gone.text.contains("role ci does not exist during renewal"),
        "{}",
        gone.text
    );

    // token_bound_cidrs: the client address is checked at login.
    for (cidr, status) in [("10.0.0.0/8", 403), ("127.0.0.1/32", 200)] {
        srv.post("auth/jwt/role/net", &srv.root, json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer", "token_bound_cidrs": cidr,
        })).await.assert_status(204);
        let r = login(&srv, "jwt", "net", &token).await;
        r.assert_status(status);
        if status == 403 {
            assert_eq!(r.errors(), vec!["permission denied"]);
        }
    }
}

/// Role writes: Vault's validation texts, defaults re-applied on update, read-back shape, LIST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_writes_follow_vault_rules() {
    let srv = TestServer::start().await;
    let k = Signer::ed25519("k");
    static_mount(&srv, "jwt", &k, json!({})).await;
    let w = |name: &'static str, body: Value| {
        let srv = &srv;
        async move {
            srv.post(&format!("auth/jwt/role/{name}"), &srv.root, body)
                .await
        }
    };
    for (body, text) in [
        (
            json!({"user_claim": "sub", "bound_audiences": "a"}),
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ),
        (
            json!({"role_type": "saml", "user_claim": "sub"}),
            "invalid 'role_type': saml",
        ),
        (
            json!({"role_type": "jwt", "bound_audiences": "a"}),
            "a user claim must be defined on the role",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub"}),
            "must have at least one bound constraint when creating/updating a role",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "bound_claims_type": "regex"}),
            "invalid 'bound_claims_type': regex",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_claims_type": "glob", "bound_claims": {"n": 42}}),
            "claim is not a string: 42",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_claims_type": "glob", "bound_claims": {"n": {"a": "b"}}}),
            "claim is not a string or list: map[a:b]",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "claim_mappings": {"x": "role"}}),
            "metadata key \"role\" is reserved and may not be a mapping destination",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "claim_mappings": {"x": "k", "y": "k"}}),
            "multiple keys are mapped to metadata key \"k\"",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "ttl": "2h", "max_ttl": "1h"}),
            "ttl should not be greater than max ttl",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "token_ttl": "2h", "token_max_ttl": "1h"}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
    ] {
        let r = w("bad", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.errors(), vec![text], "{body}");
    }

    let r = w(
        "bad",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a",
               "token_policies": "{{identity.entity.name}}", "token_policies_template_claims": true}),
    )
    .await;
    assert_eq!(
        r.errors(),
        vec!["'token_policies_template_claims' is not supported by this server"]
    );

    // A jwt role without bound_audiences is accepted with a warning.
    let r = w(
        "subonly",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s"}),
    )
    .await;
    r.assert_status(200);
    assert!(
        r.body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("role has no bound_audiences")
    );

    // Create, read back (durations as seconds, unset leeways as 0), update semantics.
    let r = w(
        "CI",
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["coffer"],
            "bound_claims_type": "glob", "bound_claims": {"sub": "repo:org/*"},
            "claim_mappings": "project_path=project", "verbose_oidc_logging": false,
            "policies": "legacy", "ttl": "10m", "token_max_ttl": 3600,
        }),
    )
    .await;
    r.assert_status(200);
    assert!(
        r.body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("bound_claims \"sub\" is a glob: '*' also matches ':' and '/'"),
        "{}",
        r.text
    );
    let read = srv.get("auth/jwt/role/ci", &srv.root).await;
    read.assert_status(200);
    let d = &read.body["data"];
    assert_eq!(d["role_type"], "jwt");
    assert_eq!(d["bound_claims_type"], "glob");
    assert_eq!(d["bound_claims"], json!({"sub": "repo:org/*"}));
    assert_eq!(d["claim_mappings"], json!({"project_path": "project"}));
    assert_eq!(d["clock_skew_leeway"], 0);
    assert_eq!(d["expiration_leeway"], 0);
    assert_eq!(d["not_before_leeway"], 0);
    assert_eq!(d["token_policies"], json!(["legacy"]));
    assert_eq!(d["policies"], json!(["legacy"]));
    assert_eq!(d["token_ttl"], 600);
    assert_eq!(d["ttl"], 600);
    assert_eq!(d["token_max_ttl"], 3600);
    assert_eq!(d["token_type"], "default");
    assert_eq!(d["user_claim"], "sub");
    assert_eq!(d["callback_mode"], "client");
    assert_eq!(d["bound_audiences"], json!(["coffer"]));
    // Go's nil slices read back as null (OpenBao 2.7.2's shape).
    for nil in ["allowed_redirect_uris", "oidc_scopes", "oauth2_metadata"] {
        assert_eq!(d[nil], Value::Null, "{nil}");
    }
    assert_eq!(d["token_bound_cidrs"], json!([]));
    assert_eq!(d["token_strictly_bind_ip"], false);

    // An update that omits role_type falls back to oidc, as in Vault.
    let r = w("ci", json!({"bound_subject": "x"})).await;
    assert_eq!(
        r.errors(),
        vec!["'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."]
    );
    // One that omits bound_claims_type resets it to string, with a warning.
    let r = w("ci", json!({"role_type": "jwt", "clock_skew_leeway": 30})).await;
    r.assert_status(200);
    assert!(
        r.body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("reset to \"string\""),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["warnings"][1],
        "bindings kept from the stored role (not in this request): bound_audiences, bound_claims"
    );
    let d = srv.get("auth/jwt/role/ci", &srv.root).await.body["data"].clone();
    assert_eq!(d["bound_claims_type"], "string");
    assert_eq!(d["clock_skew_leeway"], 30);
    assert_eq!(
        d["bound_claims"],
        json!({"sub": "repo:org/*"}),
        "kept from the stored role"
    );
    // The leeways are signed durations, as in Vault: Go durations, seconds, or -1 (none).
    w(
        "ci",
        json!({"role_type": "jwt", "clock_skew_leeway": "1m", "expiration_leeway": "-1",
            "not_before_leeway": "2h"}),
    )
    .await
    .assert_status(200);
    let d = srv.get("auth/jwt/role/ci", &srv.root).await.body["data"].clone();
    assert_eq!(
        (
            &d["clock_skew_leeway"],
            &d["expiration_leeway"],
            &d["not_before_leeway"]
        ),
        (&json!(60), &json!(-1), &json!(7200))
    );
    let r = w("ci", json!({"role_type": "jwt", "clock_skew_leeway": "x"})).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["error converting input for field \"clock_skew_leeway\": time: invalid duration \"x\""]
    );

    let list = srv.list("auth/jwt/role", &srv.root).await;
    assert_eq!(list.body["data"]["keys"], json!(["ci", "subonly"]));
    srv.delete("auth/jwt/role/ci", &srv.root)
        .await
        .assert_status(204);
    srv.get("auth/jwt/role/ci", &srv.root)
        .await
        .assert_status(404);

    // `oidc` mounts are the same backend; the browser flow is refused clearly.
    enable(&srv, "oidc", "oidc").await;
    let r = srv
        .req(
            "POST",
            "auth/oidc/oidc/auth_url",
            None,
            Some(json!({"role": "x", "redirect_uri": "http://x"})),
        )
        .await;
    r.assert_status(400);
    assert!(r.errors()[0].contains("browser OIDC flow"), "{}", r.text);
}

/// Sends `request` byte for byte and returns (status, JSON body). The request must say
/// `connection: close`.
async fn raw_http(srv: &TestServer, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (len, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(len.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// hashicorp/vault-action (`method: jwt`) and the GitLab runner's `secrets:` login, replayed
/// byte for byte, then the secret read each of them does next with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_action_and_gitlab_logins_replayed() {
    let srv = TestServer::start().await;
    let gh = Signer::rsa("gh-key");
    let gl = Signer::rsa("gl-key");
    srv.write_policy(
        "ci-read",
        "path \"secret/data/ci/*\" { capabilities = [\"read\"] }",
    )
    .await;
    srv.post(
        "secret/data/ci/app",
        &srv.root,
        json!({"data": {"password": "s3cret"}}),
    )
    .await
    .assert_status(200);

    // GitHub Actions: mount jwt-github, default role for `role: ""`.
    enable(&srv, "jwt-github", "jwt").await;
    srv.post("auth/jwt-github/config", &srv.root, json!({
        "jwt_validation_pubkeys": [gh.pub_pem], "bound_issuer": "https://token.actions.githubusercontent.com",
        "default_role": "deploy",
    })).await.assert_status(204);
    srv.post("auth/jwt-github/role/deploy", &srv.root, json!({
        "role_type": "jwt", "user_claim": "actor", "bound_audiences": "https://github.com/org",
        "bound_claims_type": "glob", "bound_claims": {"sub": "repo:org/app:ref:refs/heads/main", "repository": "org/*"},
        "claim_mappings": {"repository": "repository", "ref": "ref", "sha": "sha"},
        "token_policies": "ci-read", "token_ttl": "10m",
    })).await.assert_status(204);
    let iat = now(&srv);
    let gh_token = gh.sign(&json!({
        "jti": "7f7c4d7a", "sub": "repo:org/app:ref:refs/heads/main", "aud": "https://github.com/org",
        "ref": "refs/heads/main", "sha": "0123456789abcdef0123456789abcdef01234567", "repository": "org/app",
        "repository_owner": "org", "repository_owner_id": "100", "run_id": "8000000001", "run_number": "42",
        "run_attempt": "1", "repository_visibility": "private", "repository_id": "200", "actor_id": "300",
        "actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
        "ref_type": "branch", "workflow_ref": "org/app/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "org/app/.github/workflows/deploy.yml@refs/heads/main", "runner_environment": "github-hosted",
        "iss": "https://token.actions.githubusercontent.com", "nbf": iat - 600, "exp": iat + 300, "iat": iat,
    }));
    // vault-action: got's POST of JSON.stringify({jwt, role}) to v1/auth/<path>/login.
    let body = format!(r#"{{"jwt":"{gh_token}","role":""}}"#);
    let req = format!(
        "POST /v1/auth/jwt-github/login HTTP/1.1\r\nuser-agent: got (https://github.com/sindresorhus/got)\r\n\
         content-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\
         accept-encoding: gzip, deflate, br\r\nHost: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        srv.addr
    );
    let (status, resp) = raw_http(&srv, req.as_bytes()).await;
    assert_eq!(status, 200, "{resp}");
    // What vault-action reads: auth.client_token, auth.policies, auth.metadata.
    let token = resp["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(resp["auth"]["policies"], json!(["ci-read", "default"]));
    assert_eq!(
        resp["auth"]["metadata"],
        json!({"role": "deploy", "repository": "org/app", "ref": "refs/heads/main",
               "sha": "0123456789abcdef0123456789abcdef01234567"})
    );
    // vault-action's next request: the secret, with X-Vault-Token.
    let req = format!(
        "GET /v1/secret/data/ci/app HTTP/1.1\r\nuser-agent: got (https://github.com/sindresorhus/got)\r\n\
         x-vault-token: {token}\r\naccept: application/json\r\naccept-encoding: gzip, deflate, br\r\n\
         Host: {}\r\nConnection: close\r\n\r\n",
        srv.addr
    );
    let (status, secret) = raw_http(&srv, req.as_bytes()).await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["data"]["data"]["password"], "s3cret");

    // GitLab CI: the runner's Go client PUTs {"jwt","role"} to auth/<VAULT_AUTH_PATH>/login.
    enable(&srv, "jwt", "jwt").await;
    srv.post(
        "auth/jwt/config",
        &srv.root,
        json!({
            "jwt_validation_pubkeys": [gl.pub_pem], "bound_issuer": "https://gitlab.example.com",
        }),
    )
    .await
    .assert_status(204);
    srv.post("auth/jwt/role/app-main", &srv.root, json!({
        "role_type": "jwt", "user_claim": "user_login", "bound_audiences": "https://coffer.example",
        "bound_claims": {"project_path": "group/app", "ref": "main", "ref_protected": "true"},
        "claim_mappings": {"project_path": "project_path", "pipeline_id": "pipeline_id"},
        "token_policies": "ci-read", "token_explicit_max_ttl": "1h",
    })).await.assert_status(204);
    let gl_token = gl.sign(&json!({
        "namespace_id": "1", "namespace_path": "group", "project_id": "22", "project_path": "group/app",
        "user_id": "42", "user_login": "alice", "user_email": "alice@example.com", "user_access_level": "developer",
        "pipeline_id": "1212", "pipeline_source": "push", "job_id": "1212", "ref": "main", "ref_type": "branch",
        "ref_path": "refs/heads/main", "ref_protected": "true", "runner_id": "1", "runner_environment": "self-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc", "project_visibility": "private",
        "ci_config_ref_uri": "gitlab.example.com/group/app//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b", "iss": "https://gitlab.example.com",
        "iat": iat, "nbf": iat - 5, "exp": iat + 3600,
        "sub": "project_path:group/app:ref_type:branch:ref:main", "aud": "https://coffer.example",
    }));
    let body = format!(r#"{{"jwt":"{gl_token}","role":"app-main"}}"#);
    let req = format!(
        "PUT /v1/auth/jwt/login HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\nX-Vault-Request: true\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n{body}",
        srv.addr,
        body.len()
    );
    let (status, resp) = raw_http(&srv, req.as_bytes()).await;
    assert_eq!(status, 200, "{resp}");
    let token = resp["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(resp["auth"]["lease_duration"], 3600);
    assert_eq!(resp["auth"]["renewable"], true);
    assert_eq!(resp["auth"]["metadata"]["project_path"], "group/app");
    let req = format!(
        "GET /v1/secret/data/ci/app HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\n\
         X-Vault-Request: true\r\nX-Vault-Token: {token}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        srv.addr
    );
    let (status, secret) = raw_http(&srv, req.as_bytes()).await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["data"]["data"]["password"], "s3cret");

    // GitLab's documented failures: no VAULT_AUTH_ROLE, and an id_token for another audience.
    let body = format!(r#"{{"jwt":"{gl_token}"}}"#);
    let req = format!(
        "PUT /v1/auth/jwt/login HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        srv.addr,
        body.len()
    );
    let (status, resp) = raw_http(&srv, req.as_bytes()).await;
    assert_eq!(
        (status, resp["errors"].clone()),
        (400, json!(["missing role"]))
    );
}

/// The `bao` CLI: `bao write auth/jwt/login role=... jwt=...` and the token it prints works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bao_cli_write_login() {
    let srv = TestServer::start().await;
    let k = Signer::p384("k");
    static_mount(&srv, "jwt", &k, json!({})).await;
    srv.post("auth/jwt/role/ci", &srv.root, json!({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer", "token_policies": "default",
    })).await.assert_status(204);
    let cli = crate::cli::Cli::new(&srv).unwrap();
    let jwt = format!("jwt={}", k.sign(&base_claims(now(&srv))));
    let out = cli
        .ok(
            None,
            &["write", "-format=json", "auth/jwt/login", "role=ci", &jwt],
        )
        .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    let token = v["auth"]["client_token"].as_str().unwrap();
    assert_eq!(v["auth"]["policies"], json!(["default"]));
    srv.get("auth/token/lookup-self", token)
        .await
        .assert_status(200);
    let bad = cli
        .run(
            None,
            &["write", "auth/jwt/login", "role=ci", "jwt=a.b"],
            None,
        )
        .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("error validating token: error verifying token signature: go-jose/go-jose: compact JWS format must have three parts"),
        "{}",
        bad.stderr
    );
}

/// Single flight: a burst of concurrent logins with a freshly rotated `kid` causes exactly one
/// JWKS fetch, and every one of them succeeds. Repeated over several rotations (fresh mounts, so
/// each burst is outside the 10 s window of the previous one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_unknown_kid_logins_share_one_refresh() {
    let srv = TestServer::start().await;
    for round in 0..4 {
        let p = provider(false).await;
        let old = Signer::p256(&format!("old{round}"));
        let new = Signer::ed25519(&format!("new{round}"));
        p.set_keys(&[&old]);
        let mount = format!("jwt-sf{round}");
        enable(&srv, &mount, "jwt").await;
        srv.post(
            &format!("auth/{mount}/config"),
            &srv.root,
            json!({"jwks_url": format!("{}/jwks", p.base), "bound_issuer": ISSUER}),
        )
        .await
        .assert_status(204);
        srv.post(
            &format!("auth/{mount}/role/ci"),
            &srv.root,
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer"}),
        )
        .await
        .assert_status(204);
        assert_eq!(p.hits(), 1);
        p.set_keys(&[&old, &new]);
        let token = new.sign(&base_claims(now(&srv)));
        let url = srv.url(&format!("auth/{mount}/login"));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (client, url, body) = (
                srv.client.clone(),
                url.clone(),
                json!({"role": "ci", "jwt": token}).to_string(),
            );
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200, "round {round}");
        }
        assert_eq!(
            p.hits(),
            2,
            "round {round}: one refresh for the whole burst"
        );
    }
}

/// Role writes take effect at once for every later login, while other logins keep reading the
/// role concurrently (the login path serves the role from memory; a read that raced a write must
/// never keep the old role). 300 rounds of: write `bound_subject = s<i>`, then a login as `s<i>`
/// is accepted and one as `s<i-1>` refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn role_writes_are_seen_by_the_next_login_under_concurrent_logins() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    let k = std::sync::Arc::new(Signer::p256("k"));
    static_mount(&srv, "jwt", &k, json!({})).await;
    let role = |sub: &str| {
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
               "bound_subject": sub})
    };
    srv.post("auth/jwt/role/ci", &srv.root, role("s0"))
        .await
        .assert_status(204);
    let token_for = |sub: &str| {
        let mut claims = base_claims(now(&srv));
        claims["sub"] = json!(sub);
        k.sign(&claims)
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..6 {
        let (srv, stop, token) = (srv.clone(), stop.clone(), token_for(&format!("s{r}")));
        readers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let st = login(&srv, "jwt", "ci", &token).await.status;
                assert!(st == 200 || st == 400, "{st}");
                n += 1;
            }
            n
        }));
    }
    for i in 1..=300 {
        srv.post("auth/jwt/role/ci", &srv.root, role(&format!("s{i}")))
            .await
            .assert_status(204);
        login(&srv, "jwt", "ci", &token_for(&format!("s{i}")))
            .await
            .assert_status(200);
        login(&srv, "jwt", "ci", &token_for(&format!("s{}", i - 1)))
            .await
            .assert_status(400);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    assert!(total >= 100, "the concurrent logins ran ({total})");
}

/// A JWKS answer over the 1 MiB limit is refused while it is read: the client stops reading
/// soon after the limit instead of taking the whole body in (a provider streaming 64 MiB gets
/// far less than that out before the connection is dropped). A declared length over the limit
/// is refused without reading the body at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_bodies_over_the_limit_are_refused_while_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const OFFERED: usize = 64 << 20;
    let srv = TestServer::start().await;
    enable(&srv, "jwt", "jwt").await;
    for declared in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let sent = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                head.extend_from_slice(&buf[..n]);
            }
            let length = if declared {
                format!("content-length: {OFFERED}\r\n")
            } else {
                String::new()
            };
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n"
            );
            s.write_all(header.as_bytes()).await.unwrap();
            let chunk = vec![b' '; 64 << 10];
            let mut sent = 0;
            while sent < OFFERED {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let r = srv
            .post("auth/jwt/config", &srv.root, json!({"jwks_url": url}))
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.errors(), vec!["error checking jwks URL"]);
        let sent = tokio::time::timeout(std::time::Duration::from_secs(30), sent)
            .await
            .expect("the provider is still sending: the body is being read whole")
            .unwrap();
        assert!(
            sent < OFFERED / 2,
            "declared length {declared}: {sent} of {OFFERED} bytes were taken in"
        );
    }
}

/// A JWKS URL on https whose provider redirects: to https it is followed, to plain http it is
/// refused (the keys would come unprotected and past `jwks_ca_pem`; Go's client follows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_redirects_from_https_to_http_are_refused() {
    let srv = TestServer::start().await;
    let plain = provider(false).await;
    let tls = provider(true).await;
    let k = Signer::ed25519("e1");
    plain.set_keys(&[&k]);
    tls.set_keys(&[&k]);
    enable(&srv, "jwt", "jwt").await;
    let ca = tls.ca_pem.clone().unwrap();
    let cfg = |url: String| {
        let (srv, ca) = (&srv, ca.clone());
        async move {
            srv.post(
                "auth/jwt/config",
                &srv.root,
                json!({"jwks_url": url, "jwks_ca_pem": ca}),
            )
            .await
        }
    };
    *tls.state.redirect_to.lock().unwrap() = format!("{}/jwks", tls.base);
    cfg(format!("{}/redirect", tls.base))
        .await
        .assert_status(204);
    let before = plain.hits();
    *tls.state.redirect_to.lock().unwrap() = format!("{}/jwks", plain.base);
    let r = cfg(format!("{}/redirect", tls.base)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.errors(), vec!["error checking jwks URL"]);
    assert_eq!(plain.hits(), before, "the plain http provider was asked");
}
