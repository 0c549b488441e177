//! `sys/tools/random` and `sys/tools/hash`: answers and error texts as OpenBao 2.7.2 gives them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn random_bytes_from_body_and_url() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let r = srv.post("sys/tools/random", &root, json!({})).await;
    r.assert_status(200);
    let b = B64
        .decode(r.body["data"]["random_bytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(b.len(), 32);
    assert!(r.body["warnings"].is_null());

    let r = srv
        .post("sys/tools/random/16", &root, json!({"format": "hex"}))
        .await;
    r.assert_status(200);
    let hex = r.body["data"]["random_bytes"].as_str().unwrap();
    assert_eq!(hex.len(), 32);
    assert!(
        hex.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    // Two draws differ (32 random bytes colliding would be a broken generator).
    let again = srv
        .post("sys/tools/random/16", &root, json!({"format": "hex"}))
        .await;
    assert_ne!(
        again.body["data"]["random_bytes"],
        r.body["data"]["random_bytes"]
    );

    let r = srv.post("sys/tools/random/all/8", &root, json!({})).await;
    r.assert_status(200);
    assert_eq!(
        B64.decode(r.body["data"]["random_bytes"].as_str().unwrap())
            .unwrap()
            .len(),
        8
    );
    let r = srv
        .post("sys/tools/random/seal", &root, json!({"bytes": "4"}))
        .await;
    r.assert_status(200);
    assert_eq!(
        B64.decode(r.body["data"]["random_bytes"].as_str().unwrap())
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        r.body["warnings"],
        json!(["no seal/entropy augmentation available, using platform entropy source"])
    );
    // Vault's limit is inclusive.
    srv.post("sys/tools/random", &root, json!({"bytes": 131072}))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn random_and_hash_refuse_bad_input_with_vaults_texts() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let cases = [
        (
            "sys/tools/random/bogus",
            json!({}),
            "error parsing url-set byte count: strconv.Atoi: parsing \"bogus\": invalid syntax",
        ),
        (
            "sys/tools/random/bogus/8",
            json!({}),
            "unsupported entropy source \"bogus\"; must be \"platform\" or \"seal\", or \"all\"",
        ),
        (
            "sys/tools/random",
            json!({"bytes": 0}),
            "'bytes' cannot be less than 1",
        ),
        (
            "sys/tools/random",
            json!({"bytes": 200000}),
            "'bytes' should be less than 131072",
        ),
        (
            "sys/tools/random",
            json!({"format": "x"}),
            "unsupported encoding format \"x\"; must be \"hex\" or \"base64\"",
        ),
        (
            "sys/tools/hash",
            json!({"input": "!!"}),
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
        (
            "sys/tools/hash",
            json!({"input": "aGVsbG8"}),
            "unable to decode input as base64: illegal base64 data at input byte 4",
        ),
        (
            "sys/tools/hash",
            json!({"input": "aGVsbG8=", "algorithm": "md5"}),
            "unsupported algorithm md5",
        ),
        (
            "sys/tools/hash",
            json!({"input": "aGVsbG8=", "format": "x"}),
            "unsupported encoding format x; must be \"hex\" or \"base64\"",
        ),
    ];
    for (path, body, text) in cases {
        let r = srv.post(path, &root, body.clone()).await;
        r.assert_status(400);
        assert_eq!(r.errors(), vec![text.to_string()], "{path} {body}");
    }
}

#[tokio::test]
async fn hash_sums_match_known_digests() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    // "hello", and the empty input when none is given.
    let cases = [
        (
            "sys/tools/hash",
            json!({"input": "aGVsbG8="}),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ),
        (
            "sys/tools/hash",
            json!({}),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "sys/tools/hash/sha2-512",
            json!({"input": "aGVsbG8=", "format": "base64"}),
            "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==",
        ),
        (
            "sys/tools/hash",
            json!({"input": "aGVsbG8=", "algorithm": "sha2-224"}),
            "ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193",
        ),
        (
            "sys/tools/hash/sha2-384",
            json!({"input": "aGVsbG8="}),
            "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f",
        ),
    ];
    for (path, body, sum) in cases {
        let r = srv.post(path, &root, body.clone()).await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["sum"], json!(sum), "{path} {body}");
    }
    // The default policy allows hashing but not random bytes, as in Vault.
    let t = srv.token_with(&["default"], json!({})).await;
    srv.post("sys/tools/hash", &t, json!({}))
        .await
        .assert_status(200);
    srv.post("sys/tools/random", &t, json!({}))
        .await
        .assert_status(403);
}
