//! Bad input gets Vault's status and text (checked against a live OpenBao), and changes nothing:
//! every rejected write is followed by a read proving the role is as it was.

use serde_json::{Value, json};

use super::{assert_error, login};

const MULTI: &str = "1 error occurred:\n\t* ";

fn go(msg: &str) -> String {
    format!("{MULTI}{msg}\n\n")
}

#[tokio::test]
async fn role_writes_with_bad_input_fail_and_change_nothing() {
    let srv = super::server().await;
    let role_id = super::role(
        &srv,
        "approle",
        "app",
        json!({"token_policies": "a", "token_ttl": "1h", "token_max_ttl": "4h"}),
    )
    .await;
    let before = srv.get("auth/approle/role/app", &srv.root).await.body["data"].clone();

    let cases: Vec<(Value, u16, String)> = vec![
        (json!({"token_ttl": "5h"}), 400, "'token_ttl' cannot be greater than 'token_max_ttl'".into()),
        (json!({"token_ttl": "10h", "token_max_ttl": "9h"}), 400, "'token_ttl' cannot be greater than 'token_max_ttl'".into()),
        (json!({"token_ttl": "abc"}), 400, "error converting input for field \"token_ttl\": time: invalid duration \"abc\"".into()),
        (json!({"secret_id_num_uses": "abc"}), 400, "error converting input for field \"secret_id_num_uses\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax".into()),
        (json!({"bind_secret_id": "maybe"}), 400, "error converting input for field \"bind_secret_id\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax".into()),
        (json!({"token_ttl": true}), 400, "error converting input for field \"token_ttl\": could not parse duration from input".into()),
        (json!({"secret_id_num_uses": 1.5}), 400, "error converting input for field \"secret_id_num_uses\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax".into()),
        (json!({"bind_secret_id": {"a": 1}}), 400, "error converting input for field \"bind_secret_id\": '' expected type 'bool', got unconvertible type 'map[string]interface {}'".into()),
        (json!({"secret_id_num_uses": -1}), 400, "secret_id_num_uses cannot be negative".into()),
        (json!({"token_num_uses": -1}), 400, "'token_num_uses' cannot be negative".into()),
        (json!({"token_type": "weird"}), 400, "invalid 'token_type' value \"weird\"".into()),
        (json!({"token_type": "batch", "token_period": "1h"}), 400, "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens".into()),
        (json!({"token_type": "batch", "token_num_uses": 3}), 400, "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count".into()),
        (json!({"secret_id_bound_cidrs": "10.0.0.1"}), 500, go("failed to validate CIDR blocks: invalid CIDR address: 10.0.0.1")),
        (json!({"bound_cidr_list": "bogus"}), 500, go("failed to validate CIDR blocks: invalid CIDR address: bogus")),
        (json!({"token_bound_cidrs": "bogus"}), 400, "error parsing address \"bogus\": Unable to convert \"bogus\" to an IPv4 or IPv6 address, or a UNIX Socket".into()),
        (json!({"local_secret_ids": true}), 400, "local_secret_ids can only be modified during role creation".into()),
        (json!({"role_id": ""}), 400, "invalid role_id supplied, or failed to generate a role_id".into()),
        (json!({"bind_secret_id": false}), 500, go("at least one constraint should be enabled on the role")),
        (json!({"period": "800h"}), 400, "period of \"800h0m0s\" is greater than the backend's maximum lease TTL of \"768h0m0s\"".into()),
    ];
    for (body, status, msg) in cases {
        let r = srv
            .put("auth/approle/role/app", &srv.root, body.clone())
            .await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text);
        assert_eq!(r.errors(), vec![msg], "{body}");
        let after = srv.get("auth/approle/role/app", &srv.root).await.body["data"].clone();
        assert_eq!(after, before, "{body} changed the role");
    }
    // The role_id index is untouched too.
    let r = srv.get("auth/approle/role/app/role-id", &srv.root).await;
    assert_eq!(r.body["data"]["role_id"], role_id.as_str());

    // Rejected creations leave no role behind.
    let r = srv
        .put(
            "auth/approle/role/ghost",
            &srv.root,
            json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
        )
        .await;
    assert_error(
        &r,
        400,
        "'token_ttl' cannot be greater than 'token_max_ttl'",
    );
    srv.get("auth/approle/role/ghost", &srv.root)
        .await
        .assert_status(404);
    let r = srv
        .put(
            "auth/approle/role/ghost",
            &srv.root,
            json!({"role_id": role_id}),
        )
        .await;
    assert_error(&r, 500, &go("role_id already in use"));
    srv.get("auth/approle/role/ghost", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn warnings_and_token_type_rewrites() {
    let srv = super::server().await;
    let r = srv
        .put(
            "auth/approle/role/w",
            &srv.root,
            json!({"token_type": "default-service", "token_max_ttl": "800h"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "default-service has no useful meaning; adjusting to service",
            "token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated"
        ])
    );
    let r = srv.get("auth/approle/role/w", &srv.root).await;
    assert_eq!(r.body["data"]["token_type"], "service");
    let r = srv
        .put(
            "auth/approle/role/w",
            &srv.root,
            json!({"token_type": "default-batch", "bogus": 1}),
        )
        .await;
    assert_eq!(
        r.body["warnings"],
        json!([
            "default-batch has no useful meaning; adjusting to batch",
            // The role still has token_max_ttl above the mount max, so Vault warns again.
            "token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated",
            "Endpoint ignored these unrecognized parameters: [bogus]"
        ])
    );
}

#[tokio::test]
async fn unknown_roles_answer_like_vault() {
    let srv = super::server().await;
    let root = srv.root.clone();
    let p = |s: &str| format!("auth/approle/role/nope{s}");
    assert_error(
        &srv.put(&p("/secret-id"), &root, json!(null)).await,
        404,
        "role \"nope\" does not exist",
    );
    assert_error(
        &srv.put(&p("/custom-secret-id"), &root, json!({"secret_id": "x"}))
            .await,
        404,
        "role \"nope\" does not exist",
    );
    assert_error(
        &srv.list(&p("/secret-id"), &root).await,
        400,
        "role \"nope\" does not exist",
    );
    for path in ["/secret-id/lookup", "/secret-id/destroy"] {
        let r = srv.put(&p(path), &root, json!({"secret_id": "x"})).await;
        assert_error(&r, 500, &go("role \"nope\" does not exist"));
    }
    for path in ["/secret-id-accessor/lookup", "/secret-id-accessor/destroy"] {
        let r = srv
            .put(&p(path), &root, json!({"secret_id_accessor": "x"}))
            .await;
        assert_error(&r, 500, &go("role \"nope\" does not exist"));
    }
    let r = srv.get(&p(""), &root).await;
    r.assert_status(404);
    assert_eq!(r.text, r#"{"errors":[]}"#);
    srv.get(&p("/role-id"), &root).await.assert_status(404);
    srv.get(&p("/token-ttl"), &root).await.assert_status(404);
    let r = srv
        .put(&p("/token-ttl"), &root, json!({"token_ttl": "1h"}))
        .await;
    assert_error(&r, 404, &go("unsupported path"));
    let r = srv
        .put(&p("/role-id"), &root, json!({"role_id": "x"}))
        .await;
    assert_error(&r, 404, &go("unsupported path"));
    srv.delete(&p("/token-ttl"), &root).await.assert_status(204);
    srv.delete(&p(""), &root).await.assert_status(204);
    // Names outside Vault's pattern match no path at all.
    let r = srv.put("auth/approle/role/-bad", &root, json!({})).await;
    assert_error(&r, 404, &go("unsupported path"));
    let long = "n".repeat(4097);
    let r = srv
        .put(&format!("auth/approle/role/{long}"), &root, json!({}))
        .await;
    assert_error(&r, 400, "role_name is longer than maximum of 4096 bytes");
    srv.list("auth/approle/role", &root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn login_failures_share_one_message() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "ci", json!({})).await;
    let secret = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let secret = secret["secret_id"].as_str().unwrap();
    let bad = "invalid role or secret ID";
    assert_error(
        &login(&srv, "approle", "no-such-role-id", secret).await,
        400,
        bad,
    );
    assert_error(&login(&srv, "approle", &role_id, "wrong").await, 400, bad);
    // A role_id too long to exist is not found, as Vault's salted index takes any length
    // (it was a 500 from the secret-id HMAC's limit).
    assert_error(
        &login(&srv, "approle", &"r".repeat(5000), secret).await,
        400,
        bad,
    );
    assert_error(
        &login(&srv, "approle", &role_id.to_uppercase(), secret).await,
        400,
        bad,
    );
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"secret_id": secret})),
        )
        .await;
    assert_error(&r, 400, "missing role_id");
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id})),
        )
        .await;
    assert_error(&r, 400, "missing secret_id");
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": {"a": 1}})),
        )
        .await;
    assert_error(
        &r,
        400,
        "Field validation failed: error converting input for field \"role_id\": '' expected type 'string', got unconvertible type 'map[string]interface {}'",
    );
    let r = login(&srv, "approle", &role_id, &"x".repeat(4097)).await;
    // Go errors on the login path are not wrapped in multierror text.
    assert_error(
        &r,
        500,
        "failed to create HMAC of secret_id: value is longer than maximum of 4096 bytes",
    );
    // Whitespace around the credentials is trimmed, as Vault does.
    login(
        &srv,
        "approle",
        &format!(" {role_id} "),
        &format!(" {secret}\n"),
    )
    .await
    .assert_status(200);
}
