//! The role's secondary endpoints: per-field sub-endpoints, deprecated aliases and
//! case-insensitive role names.

use serde_json::json;

use super::{assert_error, login};

fn go(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

#[tokio::test]
async fn per_field_sub_endpoints() {
    let srv = super::server().await;
    let root = srv.root.clone();
    super::role(&srv, "approle", "app", json!({"token_max_ttl": "2h"})).await;
    let p = |s: &str| format!("auth/approle/role/app/{s}");

    let cases = [
        (
            "token-ttl",
            json!({"token_ttl": "30m"}),
            "token_ttl",
            json!(1800),
        ),
        (
            "token-max-ttl",
            json!({"token_max_ttl": "1h"}),
            "token_max_ttl",
            json!(3600),
        ),
        (
            "token-num-uses",
            json!({"token_num_uses": "3"}),
            "token_num_uses",
            json!(3),
        ),
        (
            "secret-id-num-uses",
            json!({"secret_id_num_uses": 5}),
            "secret_id_num_uses",
            json!(5),
        ),
        (
            "secret-id-ttl",
            json!({"secret_id_ttl": "10m"}),
            "secret_id_ttl",
            json!(600),
        ),
        (
            "secret-id-bound-cidrs",
            json!({"secret_id_bound_cidrs": "127.0.0.0/8"}),
            "secret_id_bound_cidrs",
            json!(["127.0.0.0/8"]),
        ),
        (
            "token-bound-cidrs",
            json!({"token_bound_cidrs": "127.0.0.1,10.0.0.0/8"}),
            "token_bound_cidrs",
            json!(["127.0.0.1", "10.0.0.0/8"]),
        ),
        (
            "bind-secret-id",
            json!({"bind_secret_id": "false"}),
            "bind_secret_id",
            json!(false),
        ),
    ];
    for (path, body, field, want) in cases {
        srv.put(&p(path), &root, body).await.assert_status(204);
        let r = srv.get(&p(path), &root).await;
        r.assert_status(200);
        assert_eq!(r.body["data"], json!({ field: want }), "{path}");
        assert_eq!(
            srv.get(&p(""), &root).await.body["data"][field],
            want,
            "{path}"
        );
    }
    // Missing fields.
    for (path, field) in [
        ("token-ttl", "token_ttl"),
        ("token-max-ttl", "token_max_ttl"),
        ("token-num-uses", "token_num_uses"),
        ("secret-id-num-uses", "secret_id_num_uses"),
        ("secret-id-ttl", "secret_id_ttl"),
        ("bind-secret-id", "bind_secret_id"),
        ("role-id", "role_id"),
        ("policies", "token_policies"),
        ("period", "period"),
    ] {
        assert_error(
            &srv.put(&p(path), &root, json!({})).await,
            400,
            &format!("missing {field}"),
        );
    }
    assert_error(
        &srv.put(
            &p("secret-id-bound-cidrs"),
            &root,
            json!({"secret_id_bound_cidrs": ""}),
        )
        .await,
        400,
        "missing bound_cidr_list",
    );
    assert_error(
        &srv.put(
            &p("secret-id-bound-cidrs"),
            &root,
            json!({"secret_id_bound_cidrs": "bogus"}),
        )
        .await,
        400,
        "failed to validate CIDR blocks: invalid CIDR address: bogus",
    );
    assert_error(
        &srv.put(&p("token-ttl"), &root, json!({"token_ttl": "2h"}))
            .await,
        400,
        "token_ttl should not be greater than token_max_ttl",
    );
    assert_error(
        &srv.put(&p("token-max-ttl"), &root, json!({"token_max_ttl": "10m"}))
            .await,
        400,
        "token_max_ttl should be greater than or equal to token_ttl",
    );
    assert_error(
        &srv.put(
            &p("secret-id-num-uses"),
            &root,
            json!({"secret_id_num_uses": "x"}),
        )
        .await,
        400,
        "Field validation failed: error converting input for field \"secret_id_num_uses\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax",
    );
    // Removing the last constraint is refused (bind_secret_id is false, CIDRs are the only ones).
    srv.delete(&p("token-bound-cidrs"), &root)
        .await
        .assert_status(204);
    assert_error(
        &srv.delete(&p("secret-id-bound-cidrs"), &root).await,
        500,
        &go("at least one constraint should be enabled on the role"),
    );
    // Deletes reset to defaults.
    srv.delete(&p("bind-secret-id"), &root)
        .await
        .assert_status(204);
    assert_eq!(
        srv.get(&p("bind-secret-id"), &root).await.body["data"]["bind_secret_id"],
        true
    );
    srv.delete(&p("token-ttl"), &root).await.assert_status(204);
    assert_eq!(
        srv.get(&p("token-ttl"), &root).await.body["data"]["token_ttl"],
        0
    );
    srv.delete(&p("secret-id-bound-cidrs"), &root)
        .await
        .assert_status(204);
    assert_eq!(
        srv.get(&p(""), &root).await.body["data"]["secret_id_bound_cidrs"],
        json!(null)
    );
    assert_eq!(
        srv.get(&p("local-secret-ids"), &root).await.body["data"],
        json!({"local_secret_ids": false})
    );
    let r = srv.get(&p("bound-cidr-list"), &root).await;
    assert_eq!(r.body["data"], json!({"bound_cidr_list": null}));
    assert_eq!(
        r.body["warnings"],
        json!([
            "The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead."
        ])
    );
}

#[tokio::test]
async fn deprecated_aliases_and_case_insensitive_names() {
    let srv = super::server().await;
    let root = srv.root.clone();
    srv.put(
        "auth/approle/role/MyRole",
        &root,
        json!({"policies": "P,q, r,p", "period": "1h", "bound_cidr_list": "127.0.0.0/8"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("auth/approle/role/myrole", &root).await;
    let d = &r.body["data"];
    assert_eq!(d["policies"], json!(["p", "q", "r"]));
    assert_eq!(d["token_policies"], json!(["p", "q", "r"]));
    assert_eq!(d["period"], 3600);
    assert_eq!(d["token_period"], 3600);
    assert_eq!(d["secret_id_bound_cidrs"], json!(["127.0.0.0/8"]));
    assert!(d.get("bound_cidr_list").is_none());
    // The new name wins and clears the legacy copy.
    srv.put(
        "auth/approle/role/MYROLE",
        &root,
        json!({"token_policies": "A,b"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("auth/approle/role/MyRole/policies", &root).await;
    assert_eq!(r.body["data"], json!({"token_policies": ["A", "b"]}));
    let r = srv.list("auth/approle/role", &root).await;
    assert_eq!(r.body["data"]["keys"], json!(["myrole"]));
    // Logins report the lower-cased name and lower-cased, sorted policies.
    let role_id = srv
        .get("auth/approle/role/MyRole/role-id", &root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = super::secret_id(&srv, "approle", "MYROLE", json!(null)).await;
    let r = login(
        &srv,
        "approle",
        &role_id,
        secret["secret_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.body["auth"]["policies"], json!(["a", "b", "default"]));
    assert_eq!(r.body["auth"]["metadata"]["role_name"], "myrole");
}
