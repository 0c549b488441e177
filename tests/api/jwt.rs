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
}

fn openssl(args: &[&str], stdin: Option<&str>) -> String {
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
    String::from_utf8(out.stdout).unwrap()
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
        Signer {
            alg: Algorithm::RS256,
            kid: kid.into(),
            enc: EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
            pub_pem,
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(n), "e": "AQAB"}),
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
        }
    }

    /// A compact JWS of `claims` with this key (header `kid` set).
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
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
    if !state.up.load(Ordering::SeqCst) {
        return reply(503, "provider down".into());
    }
    match req.uri().path() {
        "/.well-known/openid-configuration" => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let issuer = state.issuer.lock().unwrap().clone();
            reply(
                200,
                json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks")}).to_string(),
            )
        }
        "/jwks" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
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
    p.set_up(true);
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
