//! Token roles: `auth/token/roles[/<name>]` and `auth/token/create/<role>`. Every expected body,
//! status and error text below was read from OpenBao 2.7.2 (`bao server -dev`) with the same
//! requests.

use serde_json::{Value, json};
use std::time::Duration;

use crate::approle::assert_error;
use crate::cli::{Cli, row};
use crate::common::{Resp, TestServer};

/// What the bao 2.7.2 CLI sends for `token create -role=<name>`.
fn cli_body() -> Value {
    json!({"ttl":"0s","explicit_max_ttl":"0s","period":"0s","display_name":"","num_uses":0,
           "renewable":true,"type":"service","entity_alias":""})
}

fn auth(r: &Resp) -> &Value {
    &r.body["auth"]
}

fn token(r: &Resp) -> String {
    r.assert_status(200);
    r.body["auth"]["client_token"].as_str().unwrap().to_string()
}

async fn write_role(srv: &TestServer, name: &str, body: Value) {
    srv.post(&format!("auth/token/roles/{name}"), &srv.root, body)
        .await
        .assert_status(204);
}

/// A server with policies `a`, `b`, `c` (each may create tokens) and a non-root, non-sudo
/// parent token holding `a` (and `default`).
async fn with_parent() -> (TestServer, String) {
    let srv = TestServer::start().await;
    for p in ["a", "b", "c", "x"] {
        srv.write_policy(
            p,
            r#"path "auth/token/*" { capabilities = ["create", "update", "read", "list"] }"#,
        )
        .await;
    }
    let parent = srv.token_with(&["a"], json!({})).await;
    (srv, parent)
}

#[tokio::test]
async fn role_crud_keeps_the_name_case() {
    let srv = TestServer::start().await;
    // No roles yet: LIST answers 404 with no errors.
    let r = srv.list("auth/token/roles", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body, json!({"errors": []}));
    write_role(&srv, "Foo", json!({})).await;
    let r = srv.get("auth/token/roles/Foo", &srv.root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({"allowed_entity_aliases":null,"allowed_policies":[],"allowed_policies_glob":[],
               "disallowed_policies":[],"disallowed_policies_glob":[],"explicit_max_ttl":0,
               "name":"Foo","orphan":false,"path_suffix":"","period":0,"renewable":true,
               "token_explicit_max_ttl":0,"token_no_default_policy":false,"token_period":0,
               "token_type":"default-service"})
    );
    let r = srv.get("auth/token/roles/foo", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body, json!({"errors": []}));
    let r = srv.list("auth/token/roles/", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"], json!(["Foo"]));
    assert_error(
        &srv.post("auth/token/create/foo", &srv.root, cli_body())
            .await,
        400,
        "unknown role foo",
    );
    let r = srv
        .post("auth/token/create/Foo", &srv.root, cli_body())
        .await;
    r.assert_status(200);
    assert_eq!(auth(&r)["policies"], json!(["root"]));
    assert_eq!(auth(&r)["orphan"], false);
    // GET on the list path and bad names.
    let r = srv.get("auth/token/roles/", &srv.root).await;
    assert_error(&r, 405, "1 error occurred:\n\t* unsupported operation\n\n");
    let r = srv.post("auth/token/roles/-x", &srv.root, json!({})).await;
    assert_error(&r, 404, "1 error occurred:\n\t* unsupported path\n\n");
    // Delete (also of a role that does not exist) answers 204.
    srv.delete("auth/token/roles/Foo", &srv.root)
        .await
        .assert_status(204);
    srv.delete("auth/token/roles/Foo", &srv.root)
        .await
        .assert_status(204);
    srv.get("auth/token/roles/Foo", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn role_fields_are_normalised_like_openbao() {
    let srv = TestServer::start().await;
    // token_ttl / token_max_ttl are not token-role fields: ignored (204, no body).
    write_role(
        &srv,
        "r2",
        json!({"token_ttl":"1h","token_max_ttl":"2h","allowed_policies":"B,a, a",
               "disallowed_policies":"X","allowed_policies_glob":"p-*",
               "disallowed_policies_glob":"Q*","orphan":true,"period":"1h",
               "explicit_max_ttl":"3h","path_suffix":"ver1","allowed_entity_aliases":"e1,E*",
               "bound_cidrs":"127.0.0.1/32","token_type":"service",
               "token_no_default_policy":true,"token_num_uses":3}),
    )
    .await;
    let r = srv.get("auth/token/roles/r2", &srv.root).await;
    assert_eq!(
        r.body["data"],
        json!({"allowed_entity_aliases":["e*","e1"],"allowed_policies":["a","b"],
               "allowed_policies_glob":["p-*"],"bound_cidrs":["127.0.0.1"],
               "disallowed_policies":["x"],"disallowed_policies_glob":["q*"],
               "explicit_max_ttl":10800,"name":"r2","orphan":true,"path_suffix":"ver1",
               "period":3600,"renewable":true,"token_bound_cidrs":["127.0.0.1"],
               "token_explicit_max_ttl":10800,"token_no_default_policy":true,
               "token_num_uses":3,"token_period":3600,"token_type":"service"})
    );
    write_role(
        &srv,
        "r3",
        json!({"token_period":"30m","token_explicit_max_ttl":"2h",
               "token_bound_cidrs":["10.0.0.0/8"],"renewable":false}),
    )
    .await;
    let r = srv.get("auth/token/roles/r3", &srv.root).await;
    assert_eq!(
        r.body["data"],
        json!({"allowed_entity_aliases":null,"allowed_policies":[],"allowed_policies_glob":[],
               "disallowed_policies":[],"disallowed_policies_glob":[],"explicit_max_ttl":0,
               "name":"r3","orphan":false,"path_suffix":"","period":0,"renewable":false,
               "token_bound_cidrs":["10.0.0.0/8"],"token_explicit_max_ttl":7200,
               "token_no_default_policy":false,"token_period":1800,
               "token_type":"default-service"})
    );
    // An update keeps the fields it does not name.
    write_role(&srv, "r3", json!({"orphan": true})).await;
    let r = srv.get("auth/token/roles/r3", &srv.root).await;
    assert_eq!(r.body["data"]["token_period"], 1800);
    assert_eq!(r.body["data"]["renewable"], false);
    assert_eq!(r.body["data"]["orphan"], true);
    // Both spellings: the deprecated one is ignored, with a warning.
    let r = srv
        .post(
            "auth/token/roles/r4",
            &srv.root,
            json!({"period":"30m","token_period":"20m"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"
        ])
    );
    let r = srv.get("auth/token/roles/r4", &srv.root).await;
    assert_eq!(r.body["data"]["period"], 0);
    assert_eq!(r.body["data"]["token_period"], 1200);
    let r = srv
        .post(
            "auth/token/roles/r5",
            &srv.root,
            json!({"token_explicit_max_ttl":"10000h"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Given explicit max TTL of 36000000 is greater than system/mount allowed value of 2764800 seconds; until this is fixed attempting to create tokens against this role will result in an error"
        ])
    );
}

#[tokio::test]
async fn role_validation_errors_match_openbao() {
    let srv = TestServer::start().await;
    for (body, msg) in [
        (
            json!({"path_suffix":"v1"}),
            "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w",
        ),
        (
            json!({"path_suffix":"a..b"}),
            "error registering path suffix: path cannot contain parent references",
        ),
        (
            json!({"token_type":"bogus"}),
            "invalid 'token_type' value \"bogus\"",
        ),
        (
            json!({"token_type":"default"}),
            "invalid 'token_type' value \"default\"",
        ),
        (
            json!({"token_type":"batch"}),
            "'token_type' cannot be 'batch' when role is set to generate non-orphan tokens",
        ),
        (
            json!({"token_type":"batch","orphan":true}),
            "'token_type' cannot be 'batch' when role is set to generate renewable tokens",
        ),
        (
            json!({"token_type":"batch","orphan":true,"renewable":false,"token_period":"1h"}),
            "'token_type' cannot be 'batch' when role is set to generate periodic tokens",
        ),
        (
            json!({"token_type":"batch","orphan":true,"renewable":false,"token_explicit_max_ttl":"1h"}),
            "'token_type' cannot be 'batch' when role is set to generate tokens with an explicit max TTL",
        ),
        (
            json!({"token_num_uses":-1}),
            "error parsing role fields: 'token_num_uses' cannot be negative",
        ),
        (
            json!({"bound_cidrs":"notacidr"}),
            "error parsing bound_cidrs: error parsing address \"notacidr\": Unable to convert \"notacidr\" to an IPv4 or IPv6 address, or a UNIX Socket",
        ),
        (
            json!({"token_bound_cidrs":"bad"}),
            "error parsing role fields: error parsing address \"bad\": Unable to convert \"bad\" to an IPv4 or IPv6 address, or a UNIX Socket",
        ),
    ] {
        let r = srv
            .post("auth/token/roles/bad", &srv.root, body.clone())
            .await;
        assert_error(&r, 400, msg);
    }
    // Nothing was stored by the refused writes.
    srv.get("auth/token/roles/bad", &srv.root)
        .await
        .assert_status(404);
    // A batch role that satisfies the rules is stored; Coffer issues no batch tokens.
    write_role(
        &srv,
        "bt",
        json!({"token_type":"batch","orphan":true,"renewable":false}),
    )
    .await;
    assert_error(
        &srv.post("auth/token/create/bt", &srv.root, cli_body())
            .await,
        400,
        "batch tokens cannot be root tokens",
    );
}

#[tokio::test]
async fn role_policies_bound_the_token_instead_of_the_parent() {
    let (srv, parent) = with_parent().await;
    write_role(&srv, "al", json!({"allowed_policies":"b,c"})).await;
    // Default: the role's allowed list (+ default), not a subset of the parent's.
    let r = srv.post("auth/token/create/al", &parent, json!({})).await;
    r.assert_status(200);
    assert_eq!(auth(&r)["policies"], json!(["b", "c", "default"]));
    let r = srv
        .post("auth/token/create/al", &parent, json!({"policies":["b"]}))
        .await;
    assert_eq!(auth(&r)["policies"], json!(["b", "default"]));
    for (who, pols, msg) in [
        (
            &parent,
            json!(["a"]),
            r#"token policies (["a" "default"]) must be subset of the role's allowed policies (["b" "c" "default"]) or glob policies ([])"#,
        ),
        (
            &parent,
            json!(["root"]),
            r#"token policies (["root"]) must be subset of the role's allowed policies (["b" "c" "default"]) or glob policies ([])"#,
        ),
        (
            &srv.root,
            json!(["root"]),
            r#"token policies (["root"]) must be subset of the role's allowed policies (["b" "c" "default"]) or glob policies ([])"#,
        ),
    ] {
        let r = srv
            .post("auth/token/create/al", who, json!({"policies": pols}))
            .await;
        assert_error(&r, 400, msg);
    }
    // Globs.
    write_role(&srv, "gl", json!({"allowed_policies_glob":"c*,B"})).await;
    let r = srv
        .post(
            "auth/token/create/gl",
            &parent,
            json!({"policies":["c","b"]}),
        )
        .await;
    assert_eq!(auth(&r)["policies"], json!(["b", "c", "default"]));
    // `root` through a role: only a root parent.
    write_role(&srv, "rootr", json!({"allowed_policies":"root"})).await;
    let r = srv
        .post("auth/token/create/rootr", &parent, json!({}))
        .await;
    assert_error(
        &r,
        400,
        "root tokens may not be created without parent token being root",
    );
    let r = srv
        .post("auth/token/create/rootr", &srv.root, json!({}))
        .await;
    r.assert_status(200);
    assert_eq!(auth(&r)["policies"], json!(["root"]));
    assert_eq!(auth(&r)["lease_duration"], 0);
    // Disallowed: the parent's policies by default, refused by name or glob.
    write_role(&srv, "dis", json!({"disallowed_policies":"a"})).await;
    let r = srv.post("auth/token/create/dis", &parent, json!({})).await;
    assert_error(&r, 400, "token policy \"a\" is disallowed by this role");
    let r = srv
        .post("auth/token/create/dis", &parent, json!({"policies":["b"]}))
        .await;
    assert_eq!(auth(&r)["policies"], json!(["b", "default"]));
    write_role(&srv, "disg", json!({"disallowed_policies_glob":"B*"})).await;
    let r = srv
        .post("auth/token/create/disg", &parent, json!({"policies":["b"]}))
        .await;
    assert_error(&r, 400, "token policy \"b\" is disallowed by this role");
    // `default` disallowed: not added.
    write_role(&srv, "disdef", json!({"disallowed_policies":"default"})).await;
    let r = srv
        .post(
            "auth/token/create/disdef",
            &parent,
            json!({"policies":["b"]}),
        )
        .await;
    assert_eq!(auth(&r)["policies"], json!(["b"]));
    // token_no_default_policy matters only with allowed/disallowed lists (as in OpenBao).
    write_role(&srv, "nd", json!({"token_no_default_policy":true})).await;
    let r = srv.post("auth/token/create/nd", &parent, json!({})).await;
    assert_eq!(auth(&r)["policies"], json!(["a", "default"]));
    write_role(
        &srv,
        "nd2",
        json!({"token_no_default_policy":true,"allowed_policies":"b"}),
    )
    .await;
    let r = srv.post("auth/token/create/nd2", &parent, json!({})).await;
    assert_eq!(auth(&r)["policies"], json!(["b"]));
    // A role without lists: the parent-subset rule as for auth/token/create.
    write_role(&srv, "none", json!({})).await;
    let r = srv
        .post("auth/token/create/none", &parent, json!({"policies":["b"]}))
        .await;
    assert_error(&r, 400, "child policies must be subset of parent");
    let r = srv.post("auth/token/create/none", &parent, json!({})).await;
    assert_eq!(auth(&r)["policies"], json!(["a", "default"]));
    // ... and no_parent is ignored (no sudo needed, no orphan made), even for root.
    let r = srv
        .post("auth/token/create/none", &parent, json!({"no_parent":true}))
        .await;
    assert_eq!(auth(&r)["orphan"], false);
    let r = srv
        .post(
            "auth/token/create/none",
            &srv.root,
            json!({"no_parent":true}),
        )
        .await;
    assert_eq!(auth(&r)["orphan"], false);
}

#[tokio::test]
async fn role_settings_shape_the_token() {
    let (srv, parent) = with_parent().await;
    write_role(
        &srv,
        "per",
        json!({"token_period":"1h","token_explicit_max_ttl":"2h","orphan":true,
               "path_suffix":"ver1","token_num_uses":5,"renewable":false}),
    )
    .await;
    let r = srv
        .post("auth/token/create/per", &parent, json!({"num_uses":7}))
        .await;
    let t = token(&r);
    assert_eq!(auth(&r)["orphan"], true);
    assert_eq!(auth(&r)["renewable"], false);
    assert_eq!(auth(&r)["lease_duration"], 3600);
    assert_eq!(auth(&r)["num_uses"], 5);
    let r = srv.get("auth/token/lookup-self", &t).await;
    r.assert_status(200);
    let d = &r.body["data"];
    assert_eq!(d["path"], "auth/token/create/per/ver1");
    assert_eq!(d["role"], "per");
    assert_eq!(d["num_uses"], 4);
    assert_eq!(d["orphan"], true);
    assert_eq!(d["renewable"], false);
    assert_eq!(d["explicit_max_ttl"], 0);
    assert_eq!(d["policies"], json!(["a", "default"]));
    assert!(d.get("period").is_none(), "{d}");
    // A requested period still needs sudo; root gets the lesser value with a warning.
    let r = srv
        .post("auth/token/create/per", &parent, json!({"period":"30m"}))
        .await;
    assert_error(
        &r,
        400,
        "root or sudo privileges required to create periodic token",
    );
    let r = srv
        .post(
            "auth/token/create/per",
            &srv.root,
            json!({"period":"30m","num_uses":2}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(auth(&r)["lease_duration"], 1800);
    assert_eq!(auth(&r)["num_uses"], 2);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Period specified both during creation call and in role; using the lesser value of 1800 seconds"
        ])
    );
    let r = srv
        .post(
            "auth/token/create/per",
            &srv.root,
            json!({"explicit_max_ttl":"1h"}),
        )
        .await;
    assert_eq!(
        r.body["warnings"],
        json!([
            "Explicit max TTL specified both during creation call and in role; using the lesser value of 3600 seconds"
        ])
    );
    // Bound CIDRs come from the role; a non-expiring root token drops them.
    write_role(&srv, "cidr", json!({"token_bound_cidrs":"10.0.0.0/8"})).await;
    let t = token(&srv.post("auth/token/create/cidr", &parent, json!({})).await);
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
    let r = srv
        .post("auth/token/lookup", &srv.root, json!({"token": t}))
        .await;
    assert_eq!(r.body["data"]["bound_cidrs"], json!(["10.0.0.0/8"]));
    let t = token(
        &srv.post("auth/token/create/cidr", &srv.root, json!({}))
            .await,
    );
    let r = srv.get("auth/token/lookup-self", &t).await;
    r.assert_status(200);
    assert!(r.body["data"].get("bound_cidrs").is_none(), "{}", r.text);
}

#[tokio::test]
async fn entity_aliases_need_a_role_that_allows_them() {
    let (srv, parent) = with_parent().await;
    write_role(&srv, "none", json!({})).await;
    write_role(&srv, "ea", json!({"allowed_entity_aliases":"Web*"})).await;
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"entity_alias":"foo"}),
        )
        .await;
    assert_error(
        &r,
        400,
        "'entity_alias' is only allowed in combination with token role",
    );
    let r = srv
        .post(
            "auth/token/create/none",
            &parent,
            json!({"entity_alias":"foo"}),
        )
        .await;
    assert_error(&r, 400, "invalid 'entity_alias' value");
    let r = srv
        .post(
            "auth/token/create/ea",
            &srv.root,
            json!({"entity_alias":"WebApp"}),
        )
        .await;
    r.assert_status(200);
    let entity = auth(&r)["entity_id"].as_str().unwrap().to_string();
    assert_eq!(entity.len(), 36, "{entity}");
    // The same alias is the same entity.
    let r = srv
        .post(
            "auth/token/create/ea",
            &parent,
            json!({"entity_alias":"WebApp"}),
        )
        .await;
    assert_eq!(auth(&r)["entity_id"], entity);
}

#[tokio::test]
async fn renewal_reads_the_role_again() {
    let srv = TestServer::start().await;
    write_role(&srv, "ren", json!({"token_period":"1h"})).await;
    let t = token(
        &srv.post("auth/token/create/ren", &srv.root, json!({}))
            .await,
    );
    let renew = || {
        srv.post(
            "auth/token/renew",
            &srv.root,
            json!({"token": t, "increment": "10h"}),
        )
    };
    let r = renew().await;
    r.assert_status(200);
    assert_eq!(auth(&r)["lease_duration"], 3600);
    write_role(&srv, "ren", json!({"token_period":"2h"})).await;
    let r = renew().await;
    assert_eq!(auth(&r)["lease_duration"], 7200);
    // Explicit max from the role caps renewals.
    write_role(
        &srv,
        "ren",
        json!({"token_period":"0s","token_explicit_max_ttl":"3h"}),
    )
    .await;
    srv.clock.advance(Duration::from_secs(3600));
    let r = renew().await;
    assert_eq!(auth(&r)["lease_duration"], 7200);
    srv.delete("auth/token/roles/ren", &srv.root)
        .await
        .assert_status(204);
    let r = renew().await;
    assert_error(
        &r,
        500,
        "1 error occurred:\n\t* failed to renew entry: original token role \"ren\" could not be found, not renewing\n\n",
    );
}

#[tokio::test]
async fn role_writes_need_create_or_update_as_they_exist() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "upd",
        r#"path "auth/token/roles/*" { capabilities = ["update", "read"] }"#,
    )
    .await;
    let t = srv.token_with(&["upd"], json!({})).await;
    let r = srv.post("auth/token/roles/new", &t, json!({})).await;
    r.assert_status(403);
    write_role(&srv, "new", json!({})).await;
    srv.post("auth/token/roles/new", &t, json!({"orphan": true}))
        .await
        .assert_status(204);
}

#[tokio::test]
async fn cli_token_create_with_a_role() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    write_role(&srv, "Foo", json!({"path_suffix":"ver1","orphan":true})).await;
    let o = cli
        .run(Some(&srv.root), &["token", "create", "-role=foo"], None)
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("* unknown role foo"), "{}", o.stderr);
    let t = cli
        .ok(
            Some(&srv.root),
            &["token", "create", "-role=Foo", "-field=token"],
        )
        .await;
    let out = cli.ok(Some(&srv.root), &["token", "lookup", &t]).await;
    assert_eq!(row(&out, "role"), Some("Foo"), "{out}");
    assert_eq!(row(&out, "path"), Some("auth/token/create/Foo/ver1"));
    assert_eq!(row(&out, "orphan"), Some("true"));
    let out = cli.ok(Some(&srv.root), &["list", "auth/token/roles"]).await;
    assert_eq!(out.lines().last(), Some("Foo"), "{out}");
    let out = cli
        .ok(Some(&srv.root), &["read", "auth/token/roles/Foo"])
        .await;
    assert_eq!(row(&out, "path_suffix"), Some("ver1"), "{out}");
}
