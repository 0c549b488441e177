//! Mount-level behaviour: custom paths, disabling (which revokes the mount's tokens), role
//! deletion and role_id changes, CIDR bindings against the client address, renewal re-reading
//! the role, and what ends up in storage.

use serde_json::json;

use super::{assert_error, login, lookup};

#[tokio::test]
async fn custom_mount_path_and_disable_revokes_its_tokens() {
    let srv = super::server().await;
    super::enable(&srv, "ci").await;
    let r = srv.get("sys/auth", &srv.root).await;
    assert_eq!(r.body["data"]["ci/"]["type"], "approle");
    let role_id = super::role(&srv, "ci", "build", json!({"token_policies": "p"})).await;
    let secret = super::secret_id(&srv, "ci", "build", json!(null)).await;
    let token =
        super::login_token(&srv, "ci", &role_id, secret["secret_id"].as_str().unwrap()).await;
    let r = srv.get("auth/token/lookup-self", &token).await;
    assert_eq!(r.body["data"]["display_name"], "ci");
    assert_eq!(r.body["data"]["path"], "auth/ci/login");
    // The default path is unaffected by this mount.
    assert_error(
        &login(&srv, "approle", &role_id, "x").await,
        400,
        "invalid role or secret ID",
    );

    srv.delete("sys/auth/ci", &srv.root)
        .await
        .assert_status(204);
    assert_error(
        &srv.get("auth/token/lookup-self", &token).await,
        403,
        "permission denied",
    );
    let r = login(&srv, "ci", &role_id, secret["secret_id"].as_str().unwrap()).await;
    r.assert_status(403);
    // Re-enabling starts empty.
    super::enable(&srv, "ci").await;
    srv.list("auth/ci/role", &srv.root).await.assert_status(404);
}

#[tokio::test]
async fn deleting_a_role_removes_its_secret_ids_and_stops_renewal() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "app", json!({"token_ttl": "1h"})).await;
    let secret = super::secret_id(&srv, "approle", "app", json!(null)).await;
    let secret = secret["secret_id"].as_str().unwrap().to_string();
    let token = super::login_token(&srv, "approle", &role_id, &secret).await;

    // Renewal re-reads the role: a changed token_ttl applies.
    srv.put(
        "auth/approle/role/app/token-ttl",
        &srv.root,
        json!({"token_ttl": "2h"}),
    )
    .await
    .assert_status(204);
    let r = srv.put("auth/token/renew-self", &token, json!({})).await;
    assert_eq!(r.body["auth"]["lease_duration"], 7200);

    srv.delete("auth/approle/role/app", &srv.root)
        .await
        .assert_status(204);
    srv.get("auth/approle/role/app", &srv.root)
        .await
        .assert_status(404);
    assert_error(
        &login(&srv, "approle", &role_id, &secret).await,
        400,
        "invalid role or secret ID",
    );
    let keys = srv.core.storage("").list_recursive("").await.unwrap();
    let approle_keys: Vec<&String> = keys.iter().filter(|k| k.starts_with("auth/")).collect();
    // Only the backend's salt remains: no role, role_id index, secret id or accessor.
    assert_eq!(approle_keys.len(), 1, "{approle_keys:?}");
    assert!(approle_keys[0].ends_with("/salt"));
    // The token lives on but can no longer be renewed.
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
    assert_error(
        &srv.put("auth/token/renew-self", &token, json!({})).await,
        500,
        "1 error occurred:\n\t* failed to renew entry: role \"app\" does not exist during renewal\n\n",
    );
    // A new role with the same name does not resurrect the old secret id.
    let role_id2 = super::role(&srv, "approle", "app", json!({})).await;
    assert_ne!(role_id, role_id2);
    assert_error(
        &login(&srv, "approle", &role_id2, &secret).await,
        400,
        "invalid role or secret ID",
    );
}

#[tokio::test]
async fn role_id_is_unique_and_old_ids_stop_working() {
    let srv = super::server().await;
    let root = srv.root.clone();
    let old_id = super::role(&srv, "approle", "a", json!({})).await;
    super::role(&srv, "approle", "b", json!({})).await;
    let secret = super::secret_id(&srv, "approle", "a", json!(null)).await;
    let secret = secret["secret_id"].as_str().unwrap();

    let taken = srv
        .put(
            "auth/approle/role/b/role-id",
            &root,
            json!({"role_id": old_id}),
        )
        .await;
    assert_error(
        &taken,
        500,
        "1 error occurred:\n\t* role_id already in use\n\n",
    );
    srv.put(
        "auth/approle/role/a/role-id",
        &root,
        json!({"role_id": "custom-id"}),
    )
    .await
    .assert_status(204);
    assert_error(
        &login(&srv, "approle", &old_id, secret).await,
        400,
        "invalid role or secret ID",
    );
    login(&srv, "approle", "custom-id", secret)
        .await
        .assert_status(200);
    // The freed id can be reused by another role.
    srv.put("auth/approle/role/b", &root, json!({"role_id": old_id}))
        .await
        .assert_status(204);
    assert_eq!(
        srv.get("auth/approle/role/b/role-id", &root).await.body["data"]["role_id"],
        old_id.as_str()
    );
}

#[tokio::test]
async fn cidr_bindings_are_checked_against_the_client_address() {
    let srv = super::server().await;
    let root = srv.root.clone();
    // Role CIDRs that exclude 127.0.0.1: the error names the client address.
    let rid = super::role(
        &srv,
        "approle",
        "far",
        json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let s = super::secret_id(&srv, "approle", "far", json!(null)).await;
    assert_error(
        &login(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await,
        400,
        "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the role: %!w(<nil>)",
    );
    // Secret-id CIDRs, unlimited and limited wording.
    let rid = super::role(
        &srv,
        "approle",
        "near",
        json!({"token_bound_cidrs": "127.0.0.1/32,10.0.0.0/8"}),
    )
    .await;
    let s = super::secret_id(&srv, "approle", "near", json!({"cidr_list": "10.0.0.0/8"})).await;
    assert_error(
        &login(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await,
        400,
        "source address \"127.0.0.1\" unauthorized through CIDR restrictions on the secret ID",
    );
    let s = super::secret_id(
        &srv,
        "approle",
        "near",
        json!({"cidr_list": "10.0.0.0/8", "num_uses": 2}),
    )
    .await;
    let sid = s["secret_id"].as_str().unwrap();
    assert_error(
        &login(&srv, "approle", &rid, sid).await,
        400,
        "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the secret ID: %!w(<nil>)",
    );
    // As in Vault, the rejected login still consumed a use.
    assert_eq!(
        lookup(&srv, "approle", "near", sid).await.body["data"]["secret_id_num_uses"],
        1
    );

    // Allowed: the token carries the role's token CIDRs, or the secret id's when it has some.
    let s = super::secret_id(&srv, "approle", "near", json!({"cidr_list": "127.0.0.0/8"})).await;
    let token = super::login_token(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await;
    let r = srv.get("auth/token/lookup-self", &token).await;
    assert_eq!(
        r.body["data"]["bound_cidrs"],
        json!(["127.0.0.1", "10.0.0.0/8"])
    );
    let s = super::secret_id(
        &srv,
        "approle",
        "near",
        json!({"token_bound_cidrs": "10.0.0.0/16"}),
    )
    .await;
    let token = super::login_token(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await;
    // Bound to 10.0.0.0/16, the token is unusable from 127.0.0.1.
    assert_error(
        &srv.get("auth/token/lookup-self", &token).await,
        403,
        "permission denied",
    );

    // Narrowing the role after issue: the secret id's CIDRs are no longer a subset (a Go error).
    let rid = super::role(
        &srv,
        "approle",
        "sub",
        json!({"secret_id_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    let s = super::secret_id(&srv, "approle", "sub", json!({"cidr_list": "127.0.0.0/16"})).await;
    srv.put(
        "auth/approle/role/sub/secret-id-bound-cidrs",
        &root,
        json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
    )
    .await
    .assert_status(204);
    assert_error(
        &login(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await,
        500,
        r#"failed to verify subset relationship between CIDR blocks on the role ["10.0.0.0/8"] and CIDR blocks on the secret ID ["127.0.0.0/16"]: %!w(<nil>)"#,
    );

    // bind_secret_id=false: the role_id alone logs in from an allowed address; a secret is ignored.
    let rid = super::role(&srv, "approle", "open", json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8", "token_policies": "x"})).await;
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": rid})),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["metadata"], json!({"role_name": "open"}));
    assert_eq!(r.body["auth"]["policies"], json!(["default", "x"]));
    login(&srv, "approle", &rid, "whatever")
        .await
        .assert_status(200);
    let r = srv.get("auth/approle/role/open", &root).await;
    assert_eq!(r.body["warnings"], json!(null));
}

#[tokio::test]
async fn auth_block_follows_the_role() {
    let srv = super::server().await;
    let rid = super::role(
        &srv,
        "approle",
        "r",
        json!({"token_policies": "B,a", "token_no_default_policy": true, "token_num_uses": 3, "token_period": "1h", "token_explicit_max_ttl": "2h"}),
    )
    .await;
    let s = super::secret_id(&srv, "approle", "r", json!({"metadata": "team=CI"})).await;
    let r = login(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await;
    let a = &r.body["auth"];
    assert_eq!(a["policies"], json!(["a", "b"]));
    assert_eq!(a["num_uses"], 3);
    assert_eq!(a["lease_duration"], 3600);
    assert_eq!(a["metadata"], json!({"role_name": "r", "team": "ci"}));
    let r = srv
        .put(
            "auth/approle/role/root-ish",
            &srv.root,
            json!({"token_policies": "root"}),
        )
        .await;
    r.assert_status(204);
    let rid = srv
        .get("auth/approle/role/root-ish/role-id", &srv.root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = super::secret_id(&srv, "approle", "root-ish", json!(null)).await;
    assert_error(
        &login(&srv, "approle", &rid, s["secret_id"].as_str().unwrap()).await,
        400,
        "auth methods cannot create root tokens",
    );
}

#[tokio::test]
async fn storage_holds_no_plaintext_secret_ids_or_role_ids() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "app", json!({})).await;
    let pulled = super::secret_id(&srv, "approle", "app", json!(null)).await;
    let r = srv
        .put(
            "auth/approle/role/app/custom-secret-id",
            &srv.root,
            json!({"secret_id": "pushed-secret-value"}),
        )
        .await;
    r.assert_status(200);
    let storage = srv.core.storage("");
    let keys = storage.list_recursive("").await.unwrap();
    let secrets = [pulled["secret_id"].as_str().unwrap(), "pushed-secret-value"];
    for k in &keys {
        let value = String::from_utf8_lossy(&storage.get(k).await.unwrap().unwrap()).to_string();
        for s in secrets {
            assert!(
                !k.contains(s) && !value.contains(s),
                "secret id found at {k}"
            );
        }
        assert!(!k.contains(&role_id), "role_id used as a key at {k}");
        assert!(
            !k.contains(pulled["secret_id_accessor"].as_str().unwrap()),
            "accessor used as a key at {k}"
        );
    }
}

#[tokio::test]
async fn acl_sees_create_for_new_roles_and_update_for_existing_ones() {
    let srv = super::server().await;
    srv.write_policy(
        "updater",
        r#"path "auth/approle/role/*" { capabilities = ["read", "update"] }"#,
    )
    .await;
    // The guide's admin policy for AppRole.
    srv.write_policy(
        "admin",
        r#"path "auth/approle/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
    )
    .await;
    let updater = srv.token_with(&["updater"], json!({})).await;
    let admin = srv.token_with(&["admin"], json!({})).await;

    let r = srv.put("auth/approle/role/new", &updater, json!({})).await;
    assert_error(&r, 403, "1 error occurred:\n\t* permission denied\n\n");
    srv.get("auth/approle/role/new", &srv.root)
        .await
        .assert_status(404);

    srv.put(
        "auth/approle/role/app",
        &admin,
        json!({"token_policies": "p"}),
    )
    .await
    .assert_status(204);
    srv.put(
        "auth/approle/role/app",
        &updater,
        json!({"token_ttl": "1h"}),
    )
    .await
    .assert_status(204);
    let role_id = srv.get("auth/approle/role/app/role-id", &admin).await.body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = srv
        .put("auth/approle/role/app/secret-id", &admin, json!(null))
        .await;
    s.assert_status(200);
    srv.list("auth/approle/role", &admin)
        .await
        .assert_status(200);
    // Login is unauthenticated: a bogus X-Vault-Token is ignored there.
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            Some("not-a-token"),
            Some(json!({"role_id": role_id, "secret_id": s.body["data"]["secret_id"]})),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["lease_duration"], 3600);
}
