//! Secret-id endpoints: narrowing rules on issue, custom (pushed) secret ids, lookups, and the
//! accessor endpoints with Vault's quirky statuses.

use serde_json::json;

use super::{assert_error, login, lookup};
use crate::common::{Resp, TestServer};

async fn accessor_op(srv: &TestServer, op: &str, accessor: &str) -> Resp {
    srv.put(
        &format!("auth/approle/role/app/secret-id-accessor/{op}"),
        &srv.root,
        json!({"secret_id_accessor": accessor}),
    )
    .await
}

fn go(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

#[tokio::test]
async fn secret_ids_only_narrow_the_role() {
    let srv = super::server().await;
    let root = srv.root.clone();
    super::role(
        &srv,
        "approle",
        "c1",
        json!({"secret_id_bound_cidrs": "10.0.0.0/8", "secret_id_num_uses": 5, "secret_id_ttl": "10m", "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let issue = |body| srv.put("auth/approle/role/c1/secret-id", &root, body);
    assert_error(
        &issue(json!({"cidr_list": "192.168.0.0/16"})).await,
        500,
        &go(
            r#"failed to verify subset relationship between CIDR blocks on the role ["10.0.0.0/8"] and CIDR blocks on the secret ID ["192.168.0.0/16"]: %!w(<nil>)"#,
        ),
    );
    assert_error(
        &issue(json!({"cidr_list": "bogus"})).await,
        500,
        &go("failed to validate CIDR blocks: invalid CIDR address: bogus"),
    );
    assert_error(
        &issue(json!({"token_bound_cidrs": "10.0.0.5"})).await,
        500,
        &go("failed to validate token CIDR blocks: invalid CIDR address: 10.0.0.5"),
    );
    assert_error(
        &issue(json!({"ttl": "-5s"})).await,
        400,
        "Field validation failed: error converting input for field \"ttl\": cannot provide negative value '-5'",
    );
    assert_error(
        &issue(json!({"num_uses": -1})).await,
        400,
        "num_uses cannot be negative",
    );
    assert_error(
        &issue(json!({"num_uses": 0})).await,
        400,
        "num_uses cannot be higher than the role's secret_id_num_uses",
    );
    assert_error(
        &issue(json!({"num_uses": 6})).await,
        400,
        "num_uses cannot be higher than the role's secret_id_num_uses",
    );
    assert_error(
        &issue(json!({"ttl": 0})).await,
        400,
        "ttl cannot be longer than the role's secret_id_ttl",
    );
    assert_error(
        &issue(json!({"ttl": "11m"})).await,
        400,
        "ttl cannot be longer than the role's secret_id_ttl",
    );
    assert_error(
        &issue(json!({"metadata": "notjson"})).await,
        400,
        "failed to parse metadata: failed to parse the input: invalid <key,value> format",
    );
    assert_error(
        &issue(json!({"metadata": {"a": "b"}})).await,
        400,
        "Field validation failed: error converting input for field \"metadata\": '' expected type 'string', got unconvertible type 'map[string]interface {}'",
    );
    srv.list("auth/approle/role/c1/secret-id", &root)
        .await
        .assert_status(404);

    let r = issue(json!({"metadata": "{\"env\":\"prod\"}", "cidr_list": "10.1.0.0/16", "num_uses": 3, "ttl": "5m", "token_bound_cidrs": "10.1.0.0/16"})).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["secret_id_num_uses"], 3);
    assert_eq!(r.body["data"]["secret_id_ttl"], 300);
    let l = lookup(
        &srv,
        "approle",
        "c1",
        r.body["data"]["secret_id"].as_str().unwrap(),
    )
    .await;
    let d = &l.body["data"];
    assert_eq!(d["metadata"], json!({"env": "prod"}));
    assert_eq!(d["cidr_list"], json!(["10.1.0.0/16"]));
    assert_eq!(d["token_bound_cidrs"], json!(["10.1.0.0/16"]));
    assert_eq!(
        d["secret_id_accessor"],
        r.body["data"]["secret_id_accessor"]
    );
    let mut keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cidr_list",
            "creation_time",
            "expiration_time",
            "last_updated_time",
            "metadata",
            "secret_id_accessor",
            "secret_id_num_uses",
            "secret_id_ttl",
            "token_bound_cidrs"
        ]
    );
    // bind_secret_id=false roles issue no secret ids.
    super::role(
        &srv,
        "approle",
        "nb",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    assert_error(
        &srv.put("auth/approle/role/nb/secret-id", &root, json!(null))
            .await,
        400,
        "bind_secret_id is not set on the role",
    );
}

#[tokio::test]
async fn custom_secret_ids_and_accessors() {
    let srv = super::server().await;
    let root = srv.root.clone();
    let role_id = super::role(&srv, "approle", "app", json!({})).await;
    let r = srv
        .put(
            "auth/approle/role/app/custom-secret-id",
            &root,
            json!({"secret_id": "my-secret"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["secret_id"], "my-secret");
    let accessor = r.body["data"]["secret_id_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let again = srv
        .put(
            "auth/approle/role/app/custom-secret-id",
            &root,
            json!({"secret_id": "my-secret"}),
        )
        .await;
    assert_error(
        &again,
        500,
        &go("failed to store secret_id: SecretID is already registered"),
    );
    assert_error(
        &srv.put("auth/approle/role/app/custom-secret-id", &root, json!({}))
            .await,
        400,
        "missing secret_id",
    );
    let r = srv.list("auth/approle/role/app/secret-id", &root).await;
    assert_eq!(r.body["data"]["keys"], json!([accessor]));

    let r = accessor_op(&srv, "lookup", &accessor).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["secret_id_accessor"], accessor.as_str());
    // Unknown accessor: a 404 whose body is a whole envelope with data.error.
    let r = accessor_op(&srv, "lookup", "nope").await;
    r.assert_status(404);
    assert_eq!(
        r.body["data"],
        json!({"error": "failed to find accessor entry for secret_id_accessor: \"nope\""})
    );
    assert_eq!(r.body["auth"], json!(null));
    assert_error(
        &accessor_op(&srv, "destroy", "nope").await,
        500,
        &go("failed to find accessor entry for secret_id_accessor: \"nope\""),
    );
    assert_error(
        &accessor_op(&srv, "lookup", "").await,
        400,
        "missing secret_id_accessor",
    );
    assert_error(
        &lookup(&srv, "approle", "app", "").await,
        400,
        "missing secret_id",
    );
    lookup(&srv, "approle", "app", "unknown")
        .await
        .assert_status(204);

    login(&srv, "approle", &role_id, "my-secret")
        .await
        .assert_status(200);
    accessor_op(&srv, "destroy", &accessor)
        .await
        .assert_status(204);
    assert_error(
        &login(&srv, "approle", &role_id, "my-secret").await,
        400,
        "invalid role or secret ID",
    );
    accessor_op(&srv, "lookup", &accessor)
        .await
        .assert_status(404);
    // DELETE works too (parameters in the query string).
    let s = super::secret_id(&srv, "approle", "app", json!(null)).await;
    srv.delete(
        &format!(
            "auth/approle/role/app/secret-id-accessor/destroy?secret_id_accessor={}",
            s["secret_id_accessor"].as_str().unwrap()
        ),
        &root,
    )
    .await
    .assert_status(204);
    srv.list("auth/approle/role/app/secret-id", &root)
        .await
        .assert_status(404);
}
