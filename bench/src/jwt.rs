//! The signed token of the `jwt-login` scenario: an RS256 JWT made with the `openssl` CLI (the
//! bench has no crypto crate), shaped like a GitHub Actions token, valid for a day. Both servers
//! get the same public key in `jwt_validation_pubkeys`, so the login path compared is signature
//! check + claim checks + token issue, with no network.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::json;

use crate::R;

/// The key's public PEM and one token signed with it.
pub struct JwtFixture {
    pub pub_pem: String,
    pub token: String,
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(B64URL[idx as usize]));
        }
    }
    out
}

fn openssl(args: &[&str], stdin: &[u8]) -> R<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("openssl: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("openssl stdin")?
        .write_all(stdin)
        .map_err(|e| format!("openssl stdin: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

fn make() -> R<JwtFixture> {
    let key = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        b"",
    )?;
    let pub_pem = String::from_utf8(openssl(&["pkey", "-pubout"], &key)?)
        .map_err(|e| format!("public key: {e}"))?;
    let dir = std::env::temp_dir().join(format!("coffer-bench-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key_file = dir.join("key.pem");
    std::fs::write(&key_file, &key).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "bench"});
    let claims = json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:org/app:ref:refs/heads/main", "aud": "https://github.com/org",
        "repository": "org/app", "ref": "refs/heads/main", "actor": "octocat",
        "iat": now, "nbf": now - 60, "exp": now + 86_400,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key_path = key_file.to_string_lossy().into_owned();
    let sig = openssl(
        &["dgst", "-sha256", "-sign", &key_path],
        signing_input.as_bytes(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(JwtFixture {
        pub_pem,
        token: format!("{signing_input}.{}", b64url(&sig?)),
    })
}

/// The process-wide fixture (made once; both servers get the same key).
pub fn fixture() -> R<&'static JwtFixture> {
    static CELL: OnceLock<R<JwtFixture>> = OnceLock::new();
    CELL.get_or_init(make).as_ref().map_err(Clone::clone)
}

/// The role the scenario logs in with: bound audience, subject and a glob on `repository`.
pub fn role() -> serde_json::Value {
    json!({
        "role_type": "jwt", "user_claim": "actor",
        "bound_audiences": "https://github.com/org",
        "bound_subject": "repo:org/app:ref:refs/heads/main",
        "bound_claims_type": "glob", "bound_claims": {"repository": "org/*"},
        "claim_mappings": {"repository": "repository", "ref": "ref"},
        "token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h",
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64url_matches_rfc4648() {
        assert_eq!(super::b64url(b""), "");
        assert_eq!(super::b64url(b"f"), "Zg");
        assert_eq!(super::b64url(b"fo"), "Zm8");
        assert_eq!(super::b64url(b"foo"), "Zm9v");
        assert_eq!(super::b64url(&[0xfb, 0xff]), "-_8");
    }
}
