//! HA standbys: every request a standby does not answer itself (see [`answered_locally`]) is
//! passed to the active node's `api_addr` — method, path, query, headers (token included) and
//! body — and the active node's answer is relayed unchanged (status, headers, body), so clients
//! that do not follow redirects work through any node. With `X-Vault-No-Request-Forwarding` the
//! client gets Vault's 307 to the same path on the active node instead. While no node is active
//! (or the active one cannot be reached): 503 `no active node` with `Retry-After: 1`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response as HttpResponse;

use super::{AppState, decode, error_response};
use crate::core::Core;
use crate::error::{Error, NO_ACTIVE_NODE};
use crate::ha::Ha;
use std::net::IpAddr;

/// Marks a request a standby forwarded: the receiver never forwards it again.
const FORWARDED: &str = "x-coffer-forwarded";
/// The client's address as the forwarding standby saw it: `<ip> <unix secs> <hex mac>`, signed
/// with a key derived from the root key (so only a node unsealed with the cluster's keys can
/// vouch for an address; bound CIDRs see the real client, never the standby).
const FORWARDED_FOR: &str = "x-coffer-forwarded-for";
/// How old a signed address may be.
const FORWARDED_FOR_MAX_AGE: i64 = 60;
const FORWARDING_KEY_LABEL: &[u8] = b"coffer ha forwarded-for v1";

fn address_mac(key: &[u8; 32], ip: &str, at: i64) -> Option<String> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{ip}|{at}").as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn signed_address(core: &Core, ip: IpAddr) -> Option<HeaderValue> {
    let key = core.barrier.derive_key(FORWARDING_KEY_LABEL).ok()?;
    let at = crate::clock::unix_secs(core.clock.now());
    let ip = ip.to_string();
    let mac = address_mac(&key, &ip, at)?;
    HeaderValue::from_str(&format!("{ip} {at} {mac}")).ok()
}

/// The client address a standby vouched for, when the signature checks out (else `None`: the
/// peer address stands).
pub(super) fn vouched_client_addr(core: &Core, headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get(FORWARDED_FOR)?.to_str().ok()?;
    let mut parts = value.split(' ');
    let (ip, at, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let at: i64 = at.parse().ok()?;
    let now = crate::clock::unix_secs(core.clock.now());
    if (now - at).abs() > FORWARDED_FOR_MAX_AGE {
        return None;
    }
    let key = core.barrier.derive_key(FORWARDING_KEY_LABEL).ok()?;
    let want = address_mac(&key, ip, at)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        want.as_bytes(),
        mac.as_bytes(),
    )) {
        return None;
    }
    ip.parse().ok()
}
/// Vault's opt-out of forwarding: answer 307 instead.
const NO_FORWARDING: &str = "x-vault-no-request-forwarding";
/// How long a forwarded request may take in all.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Paths a standby answers itself.
pub(super) fn answered_locally(path: &str) -> bool {
    matches!(
        path,
        "sys/health" | "sys/leader" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/seal"
    )
}

/// Paths about this node itself, which Vault never forwards: a standby answers them with
/// 400 `cannot forward local-only request` (as Vault's standby does). A monitor relayed from the
/// active node would also never end, as forwarded answers are read whole. `sys/metrics` comes
/// here only with a method other than GET (a scrape is served by the standby itself,
/// `core/standby.rs`): a forwarded one would report the active node's numbers as the standby's
/// (hashicorp/vault#6802).
pub(super) fn local_only(path: &str) -> bool {
    matches!(path, "sys/monitor" | "sys/in-flight-req" | "sys/metrics")
}

/// Vault's answer to a local-only request on a standby.
pub(super) fn local_only_refused() -> HttpResponse {
    error_response(&Error::bad(crate::core::LOCAL_ONLY))
}

/// 503 `no active node`, `Retry-After: 1`.
pub(super) fn no_active_node() -> HttpResponse {
    let mut resp = error_response(&Error::Coded(503, NO_ACTIVE_NODE.to_owned()));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The forwarding client (one per process, like the HA state it serves).
fn http_client(ha: &Ha) -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(2))
                .timeout(FORWARD_TIMEOUT);
            for file in &ha.settings().trusted_pem_files {
                let certs = std::fs::read(file)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| {
                        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                    });
                match certs {
                    Ok(certs) => {
                        for cert in certs {
                            builder = builder.add_root_certificate(cert);
                        }
                    }
                    Err(e) => tracing::warn!(file = %file.display(), error = %e, "HA: cannot read certificates to trust for forwarding"),
                }
            }
            builder
                .build()
                .map_err(|e| tracing::error!(error = %e, "HA: cannot build the forwarding client"))
                .ok()
        })
        .as_ref()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the HTTP stack sets itself.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !hop_by_hop(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Serves a request on a standby by forwarding it (or redirecting) to the active node.
pub(super) async fn standby(
    state: &AppState,
    ha: &Ha,
    parts: axum::http::request::Parts,
    body: Body,
    client: Option<IpAddr>,
) -> HttpResponse {
    if parts.headers.contains_key(FORWARDED) {
        // The sender thought this node active; it is not (any more).
        return no_active_node();
    }
    let Some(leader) = ha.leader_address() else {
        return no_active_node();
    };
    if leader == ha.settings().api_addr {
        return no_active_node();
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let target = format!("{}{path_and_query}", leader.trim_end_matches('/'));
    if parts
        .headers
        .get(NO_FORWARDING)
        .is_some_and(|v| !v.is_empty())
    {
        let mut resp = HttpResponse::new(Body::empty());
        *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Ok(v) = HeaderValue::from_str(&target) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let bytes = match decode::read_body(body, state.options.max_request_size).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let Some(http) = http_client(ha) else {
        return no_active_node();
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    headers.insert(FORWARDED, HeaderValue::from_static("1"));
    headers.remove(FORWARDED_FOR);
    if let Some(v) = client.and_then(|ip| signed_address(&state.core, ip)) {
        headers.insert(FORWARDED_FOR, v);
    }
    let send = http
        .request(parts.method.clone(), &target)
        .headers(headers)
        .body(bytes)
        .send();
    // Never wait on a leader that has lost the lock (frozen, partitioned): once this node sees
    // another holder (or holds the lock itself), the client gets a 503 to retry (a write still
    // pending there cannot commit any more: it is fenced). Not knowing the holder for a while
    // (this node's own view of the lock is down) deposes nobody: the leader may well commit,
    // and a 503 then would have the client apply the request twice; the answer is awaited,
    // up to the forwarding timeout.
    let deposed = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if ha
                .leader_address()
                .is_some_and(|now| now.as_str() != leader.as_str())
            {
                break;
            }
        }
    };
    let _timed = crate::telemetry::Timer::named(crate::telemetry::HA_FORWARD);
    let sent = tokio::select! {
        sent = send => sent,
        () = deposed => {
            metrics::counter!(crate::telemetry::HA_FORWARD_ERRORS).increment(1);
            tracing::warn!(leader = %leader, "HA: the active node lost the lock while a forwarded request was pending");
            return no_active_node();
        }
    };
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            metrics::counter!(crate::telemetry::HA_FORWARD_ERRORS).increment(1);
            // Without the URL: its path can name secrets.
            let e = e.without_url();
            tracing::warn!(error = %e, leader = %leader, "HA: forwarding to the active node failed");
            return no_active_node();
        }
    };
    let status = answer.status();
    let mut out_headers = HeaderMap::new();
    copy_headers(answer.headers(), &mut out_headers);
    let body = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            let e = e.without_url();
            metrics::counter!(crate::telemetry::HA_FORWARD_ERRORS).increment(1);
            tracing::warn!(error = %e, "HA: reading the active node's answer failed");
            return no_active_node();
        }
    };
    let mut resp = HttpResponse::new(Body::from(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = out_headers;
    resp
}
