//! Table tests for policy parsing and ACL evaluation. Many fixtures and rows reproduce the cases of
//! Vault's `vault/acl_test.go`, so a difference from Vault shows up as a failing row.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::builtin::{DEFAULT_POLICY, RESPONSE_WRAPPING_POLICY};
use super::{Acl, AclRequest, Capabilities, PathKind, PathRule, Policy, parse_policy};
use crate::logical::Operation::{self, Create, Delete, Help, List, Patch, Read, Update};

fn policy(name: &str, text: &str) -> Arc<Policy> {
    match parse_policy(name, text) {
        Ok(p) => Arc::new(p),
        Err(e) => unreachable!("policy {name} failed to parse: {e}"),
    }
}

fn compile(texts: &[&str]) -> Acl {
    let policies: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| policy(&format!("p{i}"), t))
        .collect();
    Acl::new(&policies).unwrap()
}

fn req<'a>(op: Operation, path: &'a str) -> AclRequest<'a> {
    AclRequest {
        operation: op,
        path,
        data: None,
        wrap_ttl: None,
    }
}

/// Checks `(op, path, allowed, root_privs)` rows against one ACL.
fn check_table(acl: &Acl, rows: &[(Operation, &str, bool, bool)]) {
    for (op, path, allowed, sudo) in rows {
        let res = acl.allow_operation(&req(*op, path));
        assert_eq!(
            (res.allowed, res.root_privs),
            (*allowed, *sudo),
            "{op:?} {path}"
        );
    }
}

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const ACL_POLICY: &str = r#"
name = "DeV"
path "dev/*" {
	policy = "sudo"
}
path "stage/*" {
	policy = "write"
}
path "stage/aws/*" {
	policy = "read"
	capabilities = ["update", "sudo"]
}
path "stage/aws/policy/*" {
	policy = "sudo"
}
path "prod/*" {
	policy = "read"
}
path "prod/aws/*" {
	policy = "deny"
}
path "sys/*" {
	policy = "deny"
}
path "foo/bar" {
	capabilities = ["read", "create", "sudo"]
}
path "baz/quux" {
	capabilities = ["read", "create", "patch"]
}
path "test/+/segment" {
	capabilities = ["read"]
}
path "+/segment/at/front" {
	capabilities = ["read"]
}
path "test/segment/at/end/+" {
	capabilities = ["read"]
}
path "test/segment/at/end/v2/+/" {
	capabilities = ["read"]
}
path "test/+/wildcard/+/*" {
	capabilities = ["read"]
}
path "test/+/wildcardglob/+/end*" {
	capabilities = ["read"]
}
path "1/2/*" {
	capabilities = ["create"]
}
path "1/2/+" {
	capabilities = ["read"]
}
path "1/2/+/+" {
	capabilities = ["update", "recover"]
}
"#;

const ACL_POLICY_2: &str = r#"
name = "OpS"
path "dev/hide/*" {
	policy = "deny"
}
path "stage/aws/policy/*" {
	policy = "deny"
	# no effect: deny wins over these
	capabilities = ["read", "update", "sudo"]
}
path "prod/*" {
	policy = "write"
}
path "sys/seal" {
	policy = "sudo"
}
path "foo/bar" {
	capabilities = ["deny"]
}
path "baz/quux" {
	capabilities = ["deny"]
}
"#;

#[test]
fn single_policy_table() {
    let acl = compile(&[ACL_POLICY]);
    check_table(
        &acl,
        &[
            (Read, "sys/mount/foo", false, false),
            (Read, "root", false, false),
            (Help, "root", true, false),
            (Read, "dev/foo", true, true),
            (Update, "dev/foo", true, true),
            (Delete, "stage/foo", true, false),
            (List, "stage/aws/foo", true, true),
            (Update, "stage/aws/foo", true, true),
            (Update, "stage/aws/policy/foo", true, true),
            (Delete, "prod/foo", false, false),
            (Update, "prod/foo", false, false),
            (Read, "prod/foo", true, false),
            (List, "prod/foo", true, false),
            (Read, "prod/aws/foo", false, false),
            (Read, "foo/bar", true, true),
            (List, "foo/bar", false, true),
            (Update, "foo/bar", false, true),
            (Create, "foo/bar", true, true),
            (Read, "baz/quux", true, false),
            (Create, "baz/quux", true, false),
            (Patch, "baz/quux", true, false),
            (List, "baz/quux", false, false),
            (Update, "baz/quux", false, false),
            // segment wildcards
            (Read, "test/foo/bar/segment", false, false),
            (Read, "test/foo/segment", true, false),
            (Read, "test/bar/segment", true, false),
            (Read, "test/segment/at/frond", false, false),
            (Read, "test/segment/at/front", true, false),
            (Read, "test/segment/at/end/foo", true, false),
            (Read, "test/segment/at/end/foo/", false, false),
            (Read, "test/segment/at/end/v2/foo/", true, false),
            (Read, "test/segment/wildcard/at/foo/", true, false),
            (Read, "test/segment/wildcard/at/end", true, false),
            (Read, "test/segment/wildcard/at/end/", true, false),
            (Read, "test/x/wildcardglob/y/endless", true, false),
            (Read, "test/x/wildcardglob/y/en", false, false),
            // segment wildcards against a glob
            (Read, "1/2/3/4", false, false),
            (Read, "1/2/3", true, false),
            (Update, "1/2/3", false, false),
            (Update, "1/2/3/4", true, false),
            (Create, "1/2/3/4/5", true, false),
            // a leading slash on the request path is ignored
            (Read, "/dev/foo", true, true),
        ],
    );
}

#[test]
fn layered_policies_table() {
    let acl = compile(&[ACL_POLICY, ACL_POLICY_2]);
    check_table(
        &acl,
        &[
            (Read, "sys/mount/foo", false, false),
            (Read, "root", false, false),
            (Help, "root", true, false),
            (Read, "dev/foo", true, true),
            (Update, "dev/foo", true, true),
            (Read, "dev/hide/foo", false, false),
            (Update, "dev/hide/foo", false, false),
            (Delete, "stage/foo", true, false),
            (List, "stage/aws/foo", true, true),
            (Update, "stage/aws/foo", true, true),
            (Update, "stage/aws/policy/foo", false, false),
            (Delete, "prod/foo", true, false),
            (Update, "prod/foo", true, false),
            (Read, "prod/foo", true, false),
            (List, "prod/foo", true, false),
            (Read, "prod/aws/foo", false, false),
            (Read, "sys/status", false, false),
            (Update, "sys/seal", true, true),
            (Read, "foo/bar", false, false),
            (List, "foo/bar", false, false),
            (Update, "foo/bar", false, false),
            (Create, "foo/bar", false, false),
            (Read, "baz/quux", false, false),
            (List, "baz/quux", false, false),
            (Update, "baz/quux", false, false),
            (Create, "baz/quux", false, false),
            (Patch, "baz/quux", false, false),
        ],
    );
}

#[test]
fn different_strings_never_merge() {
    // A deny on `secret/*` does not reach the exact rule `secret/foo`.
    let acl = compile(&[
        r#"path "secret/*" { capabilities = ["deny"] }"#,
        r#"path "secret/foo" { capabilities = ["read"] }"#,
    ]);
    check_table(
        &acl,
        &[
            (Read, "secret/foo", true, false),
            (Read, "secret/bar", false, false),
            (Read, "secret/foo/x", false, false),
        ],
    );
}

#[test]
fn root_acl() {
    let root = Acl::new(&[policy("root", "")]).unwrap();
    assert!(root.is_root());
    let res = root.allow_operation(&req(Update, "sys/mount/foo"));
    assert!(res.allowed && res.root_privs && res.is_root);
    assert_eq!(root.capabilities("any/path"), vec!["root"]);
    assert!(root.has_mount_access("secret/"));
    assert!(Acl::root().allow_operation(&req(Delete, "x")).allowed);
    let err = Acl::new(&[policy("root", ""), policy("default", DEFAULT_POLICY)]).unwrap_err();
    assert_eq!(err, "other policies present along with root");
}

#[test]
fn segment_wildcard_priority() {
    // Each policy has a read rule and a more specific update rule that must win.
    let cases = [
        (
            r#"path "+/*" { capabilities = ["read"] }
            path "*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "+/*" { capabilities = ["read"] }
            path "foo/+/*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }
            path "foo/+/bar/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/+/+/baz" { capabilities = ["read"] }
            path "foo/+/bar/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/+/(ar/baz" { capabilities = ["read"] }
            path "foo/(ar/+/baz" { capabilities = ["update"] }"#,
            "foo/(ar/(ar/baz",
        ),
        (
            r#"path "foo/bar/+/baz*" { capabilities = ["read"] }
            path "foo/bar/+/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/bar/+/b*" { capabilities = ["read"] }
            path "foo/bar/+/ba*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        // a longer plain prefix beats a wildcard whose first `+` comes earlier
        (
            r#"path "foo/+/bar/baz" { capabilities = ["read"] }
            path "foo/bar/*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        // at the same position a non-glob `+` rule beats a prefix rule
        (
            r#"path "foo/*" { capabilities = ["read"] }
            path "foo/+" { capabilities = ["update"] }"#,
            "foo/bar",
        ),
    ];
    for (i, (text, path)) in cases.iter().enumerate() {
        let acl = compile(&[text]);
        assert!(acl.allow_operation(&req(Update, path)).allowed, "case {i}");
        assert!(!acl.allow_operation(&req(Read, path)).allowed, "case {i}");
    }
}

#[test]
fn bare_mount_access() {
    let cases = [
        (r#"path "+" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "+/*" { capabilities = ["read"] }"#, "foo/", true),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            "foo/",
            true,
        ),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            "foo/bar/",
            true,
        ),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            "foo/bar/bar/",
            true,
        ),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/+/+/baz" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/+/bar/baz" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/bar/+/baz*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/bar/+/b*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (r#"path "foo/+" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "foo/+" { capabilities = ["read"] }"#, "zip/", false),
        (r#"path "foo/+" { capabilities = ["deny"] }"#, "foo/", false),
        (
            r#"path "secret/data/app" { capabilities = ["read"] }"#,
            "secret/",
            true,
        ),
        (
            r#"path "secret/data/app" { capabilities = ["read"] }"#,
            "secret",
            true,
        ),
        (
            r#"path "secret/data/app" { capabilities = ["deny"] }"#,
            "secret/",
            false,
        ),
        (
            r#"path "secret/data/app" { capabilities = ["patch"] }"#,
            "secret/",
            false,
        ),
        (
            r#"path "secret/data/*" { capabilities = ["list"] }"#,
            "secret/",
            true,
        ),
        (
            r#"path "secret*" { capabilities = ["read"] }"#,
            "secret/",
            true,
        ),
        (r#"path "*" { capabilities = ["read"] }"#, "secret/", true),
        (
            r#"path "other/*" { capabilities = ["read"] }"#,
            "secret/",
            false,
        ),
        (
            r#"path "+/data/*" { capabilities = ["read"] }"#,
            "secret/",
            true,
        ),
    ];
    for (i, (text, mount, expected)) in cases.iter().enumerate() {
        assert_eq!(
            compile(&[text]).has_mount_access(mount),
            *expected,
            "case {i}: {text} {mount}"
        );
    }
}

#[test]
fn list_fallbacks() {
    // Current Vault's order for LIST on `dir/`: exact `dir/`, exact `dir`, best prefix/wildcard
    // rule for `dir`, best prefix/wildcard rule for `dir/`. The first stage that finds a rule
    // decides, even when a later stage would have found a more specific one.
    // Each row: policy, LIST path, allowed, capabilities reported for the path. Rows marked
    // "OpenBao:" differ there (OpenBao tries the untrimmed path before the trimmed one).
    let cases: &[(&str, &str, bool, &[&str])] = &[
        // exact rule without the trailing slash
        (
            r#"path "secret/metadata/app" { capabilities = ["list"] }"#,
            "secret/metadata/app/",
            true,
            &["list"],
        ),
        (
            r#"path "secret/metadata/app/" { capabilities = ["list"] }"#,
            "secret/metadata/app/",
            true,
            &["list"],
        ),
        // an exact rule without the slash beats any prefix rule
        (
            r#"path "a/*" { capabilities = ["read"] }
            path "a/b" { capabilities = ["list"] }"#,
            "a/b/",
            true,
            &["list"],
        ),
        // prefix rule without the slash covers the listing
        (
            r#"path "secret/metadata/app*" { capabilities = ["list"] }"#,
            "secret/metadata/app/",
            true,
            &["list"],
        ),
        (
            r#"path "secret/metadata/app/*" { capabilities = ["list"] }"#,
            "secret/metadata/app/",
            true,
            &["list"],
        ),
        // a `+` rule matches the slash-trimmed path
        (
            r#"path "kv/+" { capabilities = ["list"] }"#,
            "kv/dir/",
            true,
            &["list"],
        ),
        (
            r#"path "kv/+/" { capabilities = ["list"] }"#,
            "kv/dir/",
            true,
            &["list"],
        ),
        // the trimmed path is matched first: `kv/+` answers for `kv/dir` ...
        (
            r#"path "kv/+" { capabilities = ["list"] }
            path "kv/dir/*" { capabilities = ["read"] }"#,
            "kv/dir/",
            true,
            &["list"], // OpenBao: read
        ),
        // ... `secret/*` is the longest prefix of `secret/data/app`, so the list rule on
        // `secret/data/app/*` is never consulted ...
        (
            r#"path "secret/*" { capabilities = ["read"] }
            path "secret/data/app/*" { capabilities = ["list"] }"#,
            "secret/data/app/",
            false,
            &["read"], // OpenBao: list
        ),
        // ... a deny on `kv/priv/*` does not stop `kv/+` from granting the listing ...
        (
            r#"path "kv/+" { capabilities = ["list"] }
            path "kv/priv/*" { capabilities = ["deny"] }"#,
            "kv/priv/",
            true,
            &["list"], // OpenBao: deny
        ),
        // ... and a deny on `kv/+` wins over a list grant on `kv/dir/*`
        (
            r#"path "kv/+" { capabilities = ["deny"] }
            path "kv/dir/*" { capabilities = ["list"] }"#,
            "kv/dir/",
            false,
            &["deny"], // OpenBao: list
        ),
        (
            r#"path "kv/*" { capabilities = ["read"] }
            path "kv/+/" { capabilities = ["update"] }"#,
            "kv/dir/",
            false,
            &["read"], // OpenBao: update
        ),
        // the trimmed path matches nothing, so the full path is tried
        (
            r#"path "kv/dir/*" { capabilities = ["list"] }"#,
            "kv/dir/",
            true,
            &["list"],
        ),
        (
            r#"path "kv/other/*" { capabilities = ["list"] }"#,
            "kv/dir/",
            false,
            &["deny"],
        ),
        // read on the exact rule is no list
        (
            r#"path "secret/metadata/app" { capabilities = ["read"] }"#,
            "secret/metadata/app/",
            false,
            &["read"],
        ),
        // without a trailing slash only the path itself is matched
        (
            r#"path "kv/dir/*" { capabilities = ["list"] }"#,
            "kv/dir",
            false,
            &["deny"],
        ),
    ];
    for (i, (text, path, allowed, caps)) in cases.iter().enumerate() {
        let acl = compile(&[text]);
        assert_eq!(
            acl.allow_operation(&req(List, path)).allowed,
            *allowed,
            "case {i}"
        );
        assert_eq!(acl.capabilities(path), *caps, "case {i}");
    }
    // The trailing-slash fallbacks only apply to LIST.
    let acl = compile(&[r#"path "a/b" { capabilities = ["read", "list"] }"#]);
    check_table(
        &acl,
        &[(List, "a/b/", true, false), (Read, "a/b/", false, false)],
    );
    let acl = compile(&[r#"path "a/b*" { capabilities = ["read"] }
        path "a/b/" { capabilities = ["update"] }"#]);
    check_table(
        &acl,
        &[(Read, "a/b/", false, false), (Update, "a/b/", true, false)],
    );
}

#[test]
fn capabilities_report() {
    let acl = compile(&[ACL_POLICY]);
    let rows: &[(&str, &[&str])] = &[
        ("dev", &["deny"]),
        (
            "dev/",
            &["create", "delete", "list", "read", "sudo", "update"],
        ),
        ("stage/aws/test", &["list", "read", "sudo", "update"]),
        ("prod/aws/x", &["deny"]),
        ("baz/quux", &["create", "patch", "read"]),
        ("1/2/3/4", &["recover", "update"]),
        ("nothing/here", &["deny"]),
    ];
    for (path, expected) in rows {
        assert_eq!(acl.capabilities(path), *expected, "{path}");
    }
    // LIST-style selection on a trailing slash: the trimmed path is matched first (see
    // `list_fallbacks`).
    let acl = compile(&[r#"
        path "secret/*" { capabilities = ["read"] }
        path "secret/data/app/*" { capabilities = ["list", "create"] }
        path "kv/+" { capabilities = ["list"] }
        path "kv/+/+" { capabilities = ["read"] }
        path "kv/priv/*" { capabilities = ["deny"] }
    "#]);
    let rows: &[(&str, &[&str])] = &[
        ("secret/data/app/", &["read"]),
        ("secret/data/app/x", &["create", "list"]),
        ("secret/data/app", &["read"]),
        ("kv/dir/", &["list"]),
        ("kv/dir/sub", &["read"]),
        ("kv/priv/", &["list"]),
        ("kv/priv/x", &["deny"]),
        ("kv/priv", &["list"]),
    ];
    for (path, expected) in rows {
        assert_eq!(acl.capabilities(path), *expected, "{path}");
    }
    // Computed as a list request: the exact rule without the slash answers for `x/`.
    let acl = compile(&[r#"path "x" { capabilities = ["read"] }"#]);
    assert_eq!(acl.capabilities("x/"), vec!["read"]);
    let acl = compile(&[r#"path "x" { capabilities = [] }"#]);
    assert_eq!(acl.capabilities("x"), vec!["deny"]);
}

const MERGING_POLICIES: &str = r#"
name = "ops"
path "foo/bar" {
	policy = "write"
	denied_parameters = { "baz" = [] }
	required_parameters = ["baz"]
}
path "foo/bar" {
	policy = "write"
	denied_parameters = { "zip" = [] }
}
path "hello/universe" {
	policy = "write"
	allowed_parameters = { "foo" = [] }
	required_parameters = ["foo"]
	max_wrapping_ttl = 300
	min_wrapping_ttl = 100
}
path "hello/universe" {
	policy = "write"
	allowed_parameters = { "bar" = [] }
	required_parameters = ["bar"]
	max_wrapping_ttl = 200
	min_wrapping_ttl = 50
}
path "allow/all" {
	policy = "write"
	allowed_parameters = { "test" = [], "test1" = ["foo"] }
}
path "allow/all" {
	policy = "write"
	allowed_parameters = { "*" = [] }
}
path "allow/all1" {
	policy = "write"
	allowed_parameters = { "*" = [] }
}
path "allow/all1" {
	policy = "write"
	allowed_parameters = {
		"test" = []
		"test1" = ["foo"]
	}
}
path "deny/all" {
	policy = "write"
	denied_parameters = { "test" = [] }
}
path "deny/all" {
	policy = "write"
	denied_parameters = { "*" = [] }
}
path "value/merge" {
	policy = "write"
	allowed_parameters = { "test" = [1, 2] }
	denied_parameters = { "test" = [1, 2] }
}
path "value/merge" {
	policy = "write"
	allowed_parameters = { "test" = [3, 4] }
	denied_parameters = { "test" = [3, 4] }
}
path "value/empty" {
	policy = "write"
	allowed_parameters = { "empty" = [] }
	denied_parameters = { "empty" = [1] }
}
path "value/empty" {
	policy = "write"
	allowed_parameters = { "empty" = [1] }
	denied_parameters = { "empty" = [] }
}
"#;

#[test]
fn merge_within_and_across_policies() {
    let acl = compile(&[MERGING_POLICIES]);
    let rules = acl.rules();
    let rule = |path: &str| -> PathRule {
        rules
            .iter()
            .find(|r| r.path == path && r.kind == PathKind::Exact)
            .cloned()
            .unwrap()
    };
    let map = |v: Value| -> super::ParameterMap { serde_json::from_value(v).unwrap() };
    // (path, min ttl, max ttl, allowed, denied, required)
    let rows = [
        (
            "foo/bar",
            None,
            None,
            json!({}),
            json!({"zip": [], "baz": []}),
            vec!["baz"],
        ),
        (
            "hello/universe",
            Some(50),
            Some(200),
            json!({"foo": [], "bar": []}),
            json!({}),
            vec!["foo", "bar"],
        ),
        (
            "allow/all",
            None,
            None,
            json!({"*": [], "test": [], "test1": ["foo"]}),
            json!({}),
            vec![],
        ),
        (
            "allow/all1",
            None,
            None,
            json!({"*": [], "test": [], "test1": ["foo"]}),
            json!({}),
            vec![],
        ),
        (
            "deny/all",
            None,
            None,
            json!({}),
            json!({"*": [], "test": []}),
            vec![],
        ),
        (
            "value/merge",
            None,
            None,
            json!({"test": [3, 4, 1, 2]}),
            json!({"test": [3, 4, 1, 2]}),
            vec![],
        ),
        (
            "value/empty",
            None,
            None,
            json!({"empty": []}),
            json!({"empty": []}),
            vec![],
        ),
    ];
    for (path, min, max, allowed, denied, required) in rows {
        let r = rule(path);
        assert_eq!(r.min_wrapping_ttl, min, "{path}");
        assert_eq!(r.max_wrapping_ttl, max, "{path}");
        assert_eq!(r.allowed_parameters, map(allowed), "{path}");
        assert_eq!(r.denied_parameters, map(denied), "{path}");
        assert_eq!(r.required_parameters, required, "{path}");
    }

    // Across policies: capabilities OR, deny sticky in either order, deny drops parameters.
    let acl = compile(&[
        r#"path "a" { capabilities = ["read"] }
           path "b" { capabilities = ["deny"] }
           path "c" { capabilities = ["read"] allowed_parameters = { x = [] } }"#,
        r#"path "a" { capabilities = ["list"] }
           path "b" { capabilities = ["read"] }
           path "c" { capabilities = ["deny"] }"#,
    ]);
    let rules = acl.rules();
    let caps = |p: &str| rules.iter().find(|r| r.path == p).map(|r| r.capabilities);
    assert_eq!(caps("a"), Some(Capabilities::READ | Capabilities::LIST));
    assert_eq!(caps("b"), Some(Capabilities::DENY));
    assert_eq!(caps("c"), Some(Capabilities::DENY));
    assert!(
        rules
            .iter()
            .all(|r| r.path != "c" || r.allowed_parameters.is_empty())
    );
}

const PERMISSIONS_POLICY: &str = r#"
name = "dev"
path "dev/*" {
	policy = "write"
	allowed_parameters = { "zip" = [] }
}
path "foo/bar" {
	policy = "write"
	denied_parameters = { "zap" = [] }
	min_wrapping_ttl = 300
	max_wrapping_ttl = 400
}
path "foo/baz" {
	policy = "write"
	allowed_parameters = { "hello" = [] }
	denied_parameters = { "zap" = [] }
	min_wrapping_ttl = 300
}
path "working/phone" {
	policy = "write"
	max_wrapping_ttl = 400
}
path "broken/phone" {
	policy = "write"
	allowed_parameters = { "steve" = [] }
	denied_parameters = { "steve" = [] }
}
path "hello/world" {
	policy = "write"
	allowed_parameters = { "*" = [] }
	denied_parameters = { "*" = [] }
}
path "tree/fort" {
	policy = "write"
	allowed_parameters = { "*" = [] }
	denied_parameters = { "foo" = [] }
}
path "fruit/apple" {
	policy = "write"
	allowed_parameters = { "pear" = [] }
	denied_parameters = { "*" = [] }
}
path "cold/weather" {
	policy = "write"
	allowed_parameters = {}
	denied_parameters = {}
}
path "var/aws" {
	policy = "write"
	allowed_parameters = { "*" = [] }
	denied_parameters = { "soft" = [], "warm" = [], "kitty" = [] }
}
path "var/req" {
	policy = "write"
	required_parameters = ["foo"]
}
"#;

#[test]
fn parameter_names_and_wrapping() {
    let acl = compile(&[PERMISSIONS_POLICY]);
    // (path, wrap ttl, parameter names (value ""), allowed) — checked for update and create
    let rows: &[(&str, Option<u64>, &[&str], bool)] = &[
        ("dev/ops", None, &["zip"], true),
        ("foo/bar", None, &["zap"], false),
        ("foo/bar", None, &["zip"], false),
        ("foo/bar", Some(50), &["zip"], false),
        ("foo/bar", Some(450), &["zip"], false),
        ("foo/bar", Some(350), &["zip"], true),
        ("foo/bar", Some(300), &["zip"], true),
        ("foo/bar", Some(400), &["zip"], true),
        ("foo/baz", None, &["hello"], false),
        ("foo/baz", Some(50), &["hello"], false),
        ("foo/baz", Some(450), &["hello"], true),
        ("foo/baz", None, &["zap"], false),
        ("broken/phone", None, &["steve"], false),
        ("working/phone", None, &[""], false),
        ("working/phone", Some(450), &[""], false),
        ("working/phone", Some(350), &[""], true),
        ("hello/world", None, &["one"], false),
        ("hello/world", None, &[], true),
        ("tree/fort", None, &["one"], true),
        ("tree/fort", None, &["foo"], false),
        ("tree/fort", None, &["FOO"], false),
        ("fruit/apple", None, &["pear"], false),
        ("fruit/apple", None, &["one"], false),
        ("cold/weather", None, &["four"], true),
        ("var/aws", None, &["cold", "warm", "kitty"], false),
        ("var/req", None, &["cold", "warm", "kitty"], false),
        ("var/req", None, &["cold", "warm", "kitty", "foo"], true),
        ("var/req", None, &[], false),
    ];
    for (path, wrap_ttl, names, allowed) in rows {
        let body: Map<String, Value> = names.iter().map(|n| ((*n).to_owned(), json!(""))).collect();
        for op in [Update, Create] {
            let r = AclRequest {
                operation: op,
                path,
                data: Some(&body),
                wrap_ttl: *wrap_ttl,
            };
            assert_eq!(
                acl.allow_operation(&r).allowed,
                *allowed,
                "{op:?} {path} {names:?} {wrap_ttl:?}"
            );
        }
    }
    // Parameter checks do not apply to delete or list.
    let body = data(json!({"zap": "x"}));
    let r = AclRequest {
        operation: Delete,
        path: "foo/baz",
        data: Some(&body),
        wrap_ttl: Some(400),
    };
    assert!(acl.allow_operation(&r).allowed);
}

const VALUE_PERMISSIONS_POLICY: &str = r#"
name = "op"
path "dev/*" {
	policy = "write"
	allowed_parameters = { "allow" = ["good"] }
}
path "foo/bar" {
	policy = "write"
	denied_parameters = { "deny" = ["bad*"] }
}
path "foo/baz" {
	policy = "write"
	allowed_parameters = { "ALLOW" = ["good"] }
	denied_parameters = { "dEny" = ["bad"] }
}
path "fizz/buzz" {
	policy = "write"
	allowed_parameters = {
		"allow_multi" = ["good", "good1", "good2", "*good3"]
		"allow" = ["good"]
	}
	denied_parameters = { "deny_multi" = ["bad", "bad1", "bad2"] }
}
path "test/types" {
	policy = "write"
	allowed_parameters = {
		"map" = [{"good" = "one"}]
		"int" = [1, 2]
		"bool" = [false]
	}
	denied_parameters = {
	}
}
path "test/star" {
	policy = "write"
	allowed_parameters = {
		"*" = []
		"foo" = []
		"bar" = [false]
	}
	denied_parameters = {
	}
}
path "glob/mid" {
	policy = "write"
	allowed_parameters = { "v" = ["*mid*", "*"] }
}
path "auth/token/create" {
	capabilities = ["create", "update"]
	denied_parameters = { "policies" = ["root"] }
}
"#;

#[test]
fn parameter_values() {
    let acl = compile(&[VALUE_PERMISSIONS_POLICY]);
    let rows: &[(&str, Value, bool)] = &[
        ("dev/ops", json!({"allow": "good"}), true),
        ("dev/ops", json!({"allow": "bad"}), false),
        ("foo/bar", json!({"deny": "bad"}), false),
        ("foo/bar", json!({"deny": "bad glob"}), false),
        ("foo/bar", json!({"deny": "good"}), true),
        ("foo/bar", json!({"allow": "good"}), true),
        ("foo/bar", json!({"deny": null}), true),
        ("foo/bar", json!({"allow": null}), true),
        ("foo/baz", json!({"aLLow": "good"}), true),
        ("foo/baz", json!({"deny": "bad"}), false),
        ("foo/baz", json!({"deny": "good"}), false),
        ("foo/baz", json!({"allow": "good", "deny": "bad"}), false),
        ("foo/baz", json!({"deNy": "bad", "allow": "good"}), false),
        ("foo/baz", json!({"aLLow": "bad"}), false),
        ("foo/baz", json!({"Neither": "bad"}), false),
        ("foo/baz", json!({"allow": null}), false),
        ("fizz/buzz", json!({"allow_multi": "good"}), true),
        ("fizz/buzz", json!({"allow_multi": "good1"}), true),
        ("fizz/buzz", json!({"allow_multi": "good2"}), true),
        ("fizz/buzz", json!({"allow_multi": "glob good2"}), false),
        ("fizz/buzz", json!({"allow_multi": "glob good3"}), true),
        ("fizz/buzz", json!({"allow_multi": "bad"}), false),
        (
            "fizz/buzz",
            json!({"allow_multi": "good1", "allow": "good"}),
            true,
        ),
        ("fizz/buzz", json!({"deny_multi": "bad2"}), false),
        (
            "fizz/buzz",
            json!({"deny_multi": "good", "allow_multi": "good2"}),
            false,
        ),
        // arrays and comma-separated strings: every element allowed / any element denied
        ("fizz/buzz", json!({"allow_multi": ["good", "good1"]}), true),
        ("fizz/buzz", json!({"allow_multi": ["good", "nope"]}), false),
        ("fizz/buzz", json!({"allow_multi": "good, good2"}), true),
        ("fizz/buzz", json!({"allow_multi": "good,nope"}), false),
        ("fizz/buzz", json!({"allow_multi": ""}), true),
        ("foo/bar", json!({"deny": ["good", "bad1"]}), false),
        ("foo/bar", json!({"deny": "good,bad1"}), false),
        ("foo/bar", json!({"deny": ["good", "fine"]}), true),
        // other types compare by value
        ("test/types", json!({"map": {"good": "one"}}), true),
        ("test/types", json!({"map": {"bad": "one"}}), false),
        ("test/types", json!({"int": 1}), true),
        ("test/types", json!({"int": 1.0}), true),
        ("test/types", json!({"int": 3}), false),
        ("test/types", json!({"int": "1"}), false),
        ("test/types", json!({"bool": false}), true),
        ("test/types", json!({"bool": true}), false),
        ("test/star", json!({"anything": true}), true),
        ("test/star", json!({"foo": true}), true),
        ("test/star", json!({"bar": false}), true),
        ("test/star", json!({"bar": true}), false),
        // `*mid*` is a contains-glob; a one-character `*` only matches itself
        ("glob/mid", json!({"v": "a mid b"}), true),
        ("glob/mid", json!({"v": "*"}), true),
        ("glob/mid", json!({"v": "other"}), false),
        // policy names are compared lower-cased
        ("auth/token/create", json!({"policies": "ROOT"}), false),
        (
            "auth/token/create",
            json!({"policies": ["dev", "Root"]}),
            false,
        ),
        ("auth/token/create", json!({"policies": "dev"}), true),
    ];
    for (path, body, allowed) in rows {
        let body = data(body.clone());
        for op in [Update, Create] {
            let r = AclRequest {
                operation: op,
                path,
                data: Some(&body),
                wrap_ttl: None,
            };
            assert_eq!(
                acl.allow_operation(&r).allowed,
                *allowed,
                "{op:?} {path} {body:?}"
            );
        }
    }
}

#[test]
fn default_and_wrapping_policies() {
    let acl = compile(&[DEFAULT_POLICY]);
    check_table(
        &acl,
        &[
            (Read, "auth/token/lookup-self", true, false),
            (Update, "auth/token/lookup-self", false, false),
            (Update, "auth/token/renew-self", true, false),
            (Update, "auth/token/revoke-self", true, false),
            (Update, "sys/capabilities-self", true, false),
            (Read, "sys/internal/ui/resultant-acl", true, false),
            (Update, "sys/renew", true, false),
            (Update, "sys/leases/renew", true, false),
            (Update, "sys/leases/lookup", true, false),
            (Create, "cubbyhole/x", true, false),
            (Read, "cubbyhole/x", true, false),
            (Update, "cubbyhole/x", true, false),
            (Delete, "cubbyhole/x", true, false),
            (List, "cubbyhole/", true, false),
            (Update, "sys/wrapping/wrap", true, false),
            (Update, "sys/wrapping/lookup", true, false),
            (Update, "sys/wrapping/unwrap", true, false),
            (Update, "sys/tools/hash/sha2-256", true, false),
            (Update, "sys/control-group/request", true, false),
            (
                Read,
                "identity/oidc/provider/default/authorize",
                true,
                false,
            ),
            (Read, "identity/entity/id/abc", false, false),
            (Read, "secret/data/x", false, false),
            (Update, "sys/policies/acl/x", false, false),
        ],
    );
    let templated = policy("default", DEFAULT_POLICY);
    assert_eq!(templated.rules.iter().filter(|r| r.templated).count(), 2);

    let wrap = compile(&[RESPONSE_WRAPPING_POLICY]);
    check_table(
        &wrap,
        &[
            (Create, "cubbyhole/response", true, false),
            (Read, "cubbyhole/response", true, false),
            (Delete, "cubbyhole/response", false, false),
            (Update, "sys/wrapping/unwrap", true, false),
            (Read, "cubbyhole/other", false, false),
        ],
    );
}

#[test]
fn parse_shapes() {
    // JSON form, including a list of path objects.
    let cases: &[(&str, &str, Operation, bool)] = &[
        (
            r#"{"path":{"secret/*":{"capabilities":["read"]}}}"#,
            "secret/x",
            Read,
            true,
        ),
        (
            r#"{"path":[{"a":{"capabilities":["read"]}},{"b":{"capabilities":["list"]}}]}"#,
            "b",
            List,
            true,
        ),
        (
            r#"{"path":{"x":{"capabilities":["update"],"max_wrapping_ttl":"5m"}}}"#,
            "x",
            Update,
            false,
        ),
        // HCL1 leniency: several attributes on one line, commas, quoted keys, block-style maps
        (
            r#"path "x" { capabilities = ["read"] min_wrapping_ttl = "1m" }"#,
            "x",
            Read,
            false,
        ),
        (
            r#"path "x" { capabilities = ["read"], policy = "write" }"#,
            "x",
            Update,
            true,
        ),
        (
            "path \"x\" {\n allowed_parameters { \"a\" = [\"b\"] }\n capabilities = [\"update\"]\n}",
            "x",
            Update,
            true,
        ),
        // leading slash stripped; extra labels ignored; `*` elsewhere is literal
        (
            r#"path "/lead" { capabilities = ["read"] }"#,
            "lead",
            Read,
            true,
        ),
        (
            r#"path "a" "b" { capabilities = ["read"] }"#,
            "a",
            Read,
            true,
        ),
        (
            r#"path "a*b" { capabilities = ["read"] }"#,
            "a*b",
            Read,
            true,
        ),
        (
            r#"path "a*b" { capabilities = ["read"] }"#,
            "axb",
            Read,
            false,
        ),
        // deny anywhere wins; capabilities and policy shorthands union
        (
            r#"path "x" { capabilities = ["read", "deny"] }"#,
            "x",
            Read,
            false,
        ),
        (
            r#"path "x" { policy = "deny" capabilities = ["read"] }"#,
            "x",
            Read,
            false,
        ),
        (r#"path "x" { policy = "read" }"#, "x", List, true),
        // comments of every kind, heredoc comment value, control_group ignored
        (
            "# c\n// c\n/* c */ path \"x\" {\n comment = <<EOT\nhello\nEOT\n capabilities = [\"read\"]\n control_group = { factor \"f\" { identity { approvals = 1 } } }\n}",
            "x",
            Read,
            true,
        ),
    ];
    for (i, (text, path, op, allowed)) in cases.iter().enumerate() {
        let acl = compile(&[text]);
        assert_eq!(
            acl.allow_operation(&req(*op, path)).allowed,
            *allowed,
            "case {i}: {text}"
        );
    }
    let p = policy(
        "p",
        "name = \"ignored\"\npath \"a/*\" {}\npath \"b/+/*\" {}\npath \"+\" {}",
    );
    let shapes: Vec<_> = p.rules.iter().map(|r| (r.path.as_str(), r.kind)).collect();
    assert_eq!(
        shapes,
        vec![
            ("a/", PathKind::Prefix),
            ("b/+/*", PathKind::SegmentWildcard),
            ("+", PathKind::SegmentWildcard),
        ]
    );
    assert_eq!(p.name, "p");
}

#[test]
fn wrapping_ttl_forms() {
    let ttl = |v: &str| {
        let p = policy(
            "p",
            &format!("path \"x\" {{ capabilities = [\"read\"]\n max_wrapping_ttl = {v} }}"),
        );
        p.rules.first().and_then(|r| r.max_wrapping_ttl)
    };
    let rows = [
        ("300", Some(300)),
        ("\"300\"", Some(300)),
        ("\"5m\"", Some(300)),
        ("\"1h30m\"", Some(5400)),
        ("\"1.5h\"", Some(5400)),
        ("\"2d\"", Some(172_800)),
        ("\"500ms\"", Some(1)),
        ("\"\"", None),
        ("0", None),
        ("\"-5m\"", None),
    ];
    for (v, expected) in rows {
        assert_eq!(ttl(v), expected, "{v}");
    }
}

#[test]
fn parse_errors() {
    let rows = [
        (
            "bad = 1",
            "1 error occurred:\n\t* invalid key \"bad\" on line 1\n\n",
        ),
        (
            "path \"x\" {\n capabilities=[\"read\"]\n}\nbad = 2\nworse = 3",
            "2 errors occurred:\n\t* invalid key \"bad\" on line 4\n\t* invalid key \"worse\" on line 5\n\n",
        ),
        (
            "bad \"x\" {\n}",
            "1 error occurred:\n\t* invalid key \"bad\" on line 0\n\n",
        ),
        (
            "{\"bad\": 1}",
            "1 error occurred:\n\t* invalid key \"bad\" on line 1\n\n",
        ),
        (
            "path \"x\" {\n capabilities=[\"read\"]\n foo = 1\n}",
            "1 error occurred:\n\t* path \"x\": invalid key \"foo\" on line 3\n\n",
        ),
        (
            "{\"path\":{\"x\":{\"allowed_parameters\":{\"foo\":[]}}}}",
            "1 error occurred:\n\t* path \"x\": invalid key \"foo\" on line 1\n\n",
        ),
        (
            "path \"x\" { capabilities = [\"bogus\"] }",
            "path \"x\": invalid capability \"bogus\"",
        ),
        (
            "path \"/x\" { capabilities = [\"read\", \"bogus\"] }",
            "path \"/x\": invalid capability \"bogus\"",
        ),
        (
            "path \"x\" { policy = \"bogus\" }",
            "path \"x\": invalid policy \"bogus\"",
        ),
        (
            "path \"/x+*\" { capabilities = [\"read\"] }",
            "path \"x+*\": invalid use of wildcards ('+*' is forbidden)",
        ),
        (
            "path \"x\" {\n capabilities = [\"read\"]\n min_wrapping_ttl = \"10m\"\n max_wrapping_ttl = \"5m\"\n}",
            "max_wrapping_ttl cannot be less than min_wrapping_ttl",
        ),
        (
            "path \"x\" { min_wrapping_ttl = \"abc\" }",
            "error parsing min_wrapping_ttl: time: invalid duration \"abc\"",
        ),
        (
            "path \"x\" { min_wrapping_ttl = \"5x\" }",
            "error parsing min_wrapping_ttl: time: unknown unit \"x\" in duration \"5x\"",
        ),
        (
            "path \"x\" { max_wrapping_ttl = true }",
            "error parsing max_wrapping_ttl: could not parse duration from input",
        ),
        (
            "path = \"x\"",
            "path \"path\": cannot check HCL keys of type *ast.LiteralType",
        ),
        (
            "path \"x\" { capabilities = \"read\" }",
            "path \"x\": capabilities: unknown slice type: *ast.LiteralType",
        ),
    ];
    for (text, expected) in rows {
        assert_eq!(parse_policy("p", text).unwrap_err(), expected, "{text}");
    }
    // Errors without an exact Vault text still fail.
    for text in [
        "name{}",
        "path \"x\" {",
        "path \"x\" { capabilities = [\"a\" \"b\"] }",
        "path \"x\" \"y\" = {}",
    ] {
        assert!(parse_policy("p", text).is_err(), "{text}");
    }
    // A deny stops interpretation, so later invalid entries are not reported (as in Vault).
    assert!(parse_policy("p", "path \"x\" { capabilities = [\"deny\", \"bogus\"] }").is_ok());
    assert!(parse_policy("p", "").is_ok_and(|p| p.rules.is_empty()));
}

#[test]
fn help_and_result_fields() {
    let acl = compile(&[r#"path "s/*" { capabilities = ["read", "sudo"] }"#]);
    let res = acl.allow_operation(&req(Help, "anything"));
    assert!(res.allowed && !res.root_privs && !res.is_root);
    let res = acl.allow_operation(&req(Update, "s/x"));
    assert!(!res.allowed && res.root_privs);
    assert_eq!(res.capabilities, Capabilities::READ | Capabilities::SUDO);
    assert_eq!(
        acl.allow_operation(&req(Read, "t")).capabilities,
        Capabilities::empty()
    );
}

#[test]
fn hostile_input_is_rejected_without_panicking() {
    let deep = format!(
        "path \"x\" {{ comment = {}{} }}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse_policy("p", &deep).is_err());
    let deep_json = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(parse_policy("p", &deep_json).is_err());
    assert_eq!(
        parse_policy("p", "path \"id/{{identity.entity.id\" {}").unwrap_err(),
        "failed to validate policy templating: unbalanced templating characters"
    );
    // Every prefix of every fixture either parses or errors; none may panic.
    let fixtures = [
        ACL_POLICY,
        MERGING_POLICIES,
        PERMISSIONS_POLICY,
        VALUE_PERMISSIONS_POLICY,
        DEFAULT_POLICY,
        r#"{"path":{"x":{"capabilities":["read"],"min_wrapping_ttl":"1µs","v":"\u00e9\n"}}}"#,
        "path \"é\" { comment = <<-EOT\n  ünï\n  EOT\n capabilities = [\"read\"] min_wrapping_ttl = 1e3 }",
    ];
    for text in fixtures {
        for (i, _) in text.char_indices() {
            let _ = parse_policy("p", &text[..i]);
        }
    }
}

/// Vault's granting policies: per operation, the policies whose rules on the selected path gave
/// its capability (once each, in policy order); none once any rule there denies; `root` for
/// the root ACL; none for help.
#[test]
fn granting_policies_per_operation() {
    let acl = Acl::new(&[
        policy("a", r#"path "secret/data/*" { capabilities = ["read"] }"#),
        policy(
            "b",
            r#"path "secret/data/*" { capabilities = ["read", "update"] }
               path "secret/data/*" { capabilities = ["list"] }"#,
        ),
        policy("c", r#"path "secret/data/x/*" { capabilities = ["read"] }"#),
        policy("d", r#"path "secret/data/x/*" { capabilities = ["deny"] }"#),
    ])
    .unwrap();
    let names = |op, path| -> Vec<String> {
        acl.granting_policies(op, path)
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    assert_eq!(names(Operation::Read, "secret/data/app"), ["a", "b"]);
    assert_eq!(names(Operation::Update, "secret/data/app"), ["b"]);
    assert_eq!(
        names(Operation::Delete, "secret/data/app"),
        Vec::<String>::new()
    );
    assert_eq!(
        names(Operation::Read, "secret/data/x/y"),
        Vec::<String>::new()
    );
    assert_eq!(
        names(Operation::Help, "secret/data/app"),
        Vec::<String>::new()
    );
    assert_eq!(names(Operation::Read, "other/path"), Vec::<String>::new());
    let root: Vec<String> = Acl::root()
        .granting_policies(Operation::Delete, "anything")
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(root, ["root"]);
}
