#!/usr/bin/env python3
"""The AppRole pull-authentication guide, driven through hvac (the Python Vault client).

Runs against VAULT_ADDR with the admin token VAULT_TOKEN, in the guide's order: enable AppRole,
write the jenkins policy, create the role, fetch the RoleID and a SecretID (plain and
response-wrapped), log in, then read the KV v2 secret with the AppRole token, check what the
token may not do, look it up and renew it, and enforce secret_id_num_uses.

Plain script, no pytest: each step is a function; the first failing step stops the run (later
steps depend on earlier ones). Prints one line per step and a final "N passed, M failed" line;
exits non-zero on any failure.

Optional environment: NAME_SUFFIX is appended to the auth mount, role, policy and secret names,
so the script can also be pointed at a shared Vault/OpenBao server for comparison.
"""

import importlib.metadata
import os
import sys
import traceback

import hvac
import hvac.exceptions

ADDR = os.environ["VAULT_ADDR"]
ROOT = os.environ["VAULT_TOKEN"]
SUFFIX = os.environ.get("NAME_SUFFIX", "")

MOUNT = "approle" + SUFFIX
ROLE = "jenkins" + SUFFIX
POLICY = "jenkins" + SUFFIX
SECRET = "mysql/webapp" + SUFFIX
POLICY_HCL = """
# Read-only permission on 'secret/data/mysql/*' path
path "secret/data/mysql/*" {
  capabilities = [ "read" ]
}
"""
MYSQLDB = {
    "url": "foo.example.com:35533",
    "db_name": "users",
    "username": "admin",
    "password": "pa$$w0rd",
}

# Everything the steps learn, passed along in order.
state = {}


def admin():
    return hvac.Client(url=ADDR, token=ROOT)


def app():
    """A client holding the AppRole token from the login step."""
    return hvac.Client(url=ADDR, token=state["app_token"])


def expect_raises(exc_type, fn, what):
    try:
        result = fn()
    except exc_type as e:
        return e
    raise AssertionError(f"{what}: expected {exc_type.__name__}, got a response: {result!r}")


# --- Step 1: enable AppRole -------------------------------------------------------------


def step_enable_approle():
    c = admin()
    assert c.is_authenticated(), "the root token should authenticate (lookup-self)"
    c.sys.enable_auth_method(method_type="approle", path=MOUNT)
    methods = c.sys.list_auth_methods()
    listed = methods["data"] if "data" in methods else methods
    assert f"{MOUNT}/" in listed, f"{MOUNT}/ not in sys/auth: {sorted(listed)}"
    assert listed[f"{MOUNT}/"]["type"] == "approle", listed[f"{MOUNT}/"]
    e = expect_raises(
        hvac.exceptions.InvalidRequest,
        lambda: c.sys.enable_auth_method(method_type="approle", path=MOUNT),
        "enabling twice",
    )
    assert "already in use" in str(e), f"unexpected error text: {e}"


# --- Step 2: policy and role ------------------------------------------------------------


def step_write_policy():
    c = admin()
    c.sys.create_or_update_acl_policy(name=POLICY, policy=POLICY_HCL)
    got = c.sys.read_acl_policy(name=POLICY)
    assert 'path "secret/data/mysql/*"' in got["data"]["policy"], got
    names = c.sys.list_acl_policies()["data"]["keys"]
    assert POLICY in names, f"{POLICY} not in {names}"


def step_create_role():
    c = admin()
    c.auth.approle.create_or_update_approle(
        role_name=ROLE,
        token_policies=[POLICY],
        token_ttl="1h",
        token_max_ttl="4h",
        mount_point=MOUNT,
    )
    role = c.auth.approle.read_role(role_name=ROLE, mount_point=MOUNT)["data"]
    assert role["token_policies"] == [POLICY], role
    assert role["token_ttl"] == 3600, f"token_ttl: {role['token_ttl']!r}"
    assert role["token_max_ttl"] == 14400, f"token_max_ttl: {role['token_max_ttl']!r}"
    assert role["bind_secret_id"] is True, role
    assert role["secret_id_num_uses"] == 0, role
    assert role["secret_id_ttl"] == 0, role
    roles = c.auth.approle.list_roles(mount_point=MOUNT)["data"]["keys"]
    assert roles == [ROLE], roles


# --- Step 3: RoleID and SecretID --------------------------------------------------------


def step_role_id():
    r = admin().auth.approle.read_role_id(role_name=ROLE, mount_point=MOUNT)
    role_id = r["data"]["role_id"]
    assert isinstance(role_id, str) and len(role_id) == 36, f"role_id: {role_id!r}"
    state["role_id"] = role_id


def step_secret_id():
    r = admin().auth.approle.generate_secret_id(role_name=ROLE, mount_point=MOUNT)
    data = r["data"]
    assert data["secret_id"] and data["secret_id_accessor"], data
    assert data["secret_id_num_uses"] == 0, data
    state["secret_id"] = data["secret_id"]


def step_wrapped_secret_id():
    c = admin()
    r = c.auth.approle.generate_secret_id(
        role_name=ROLE, mount_point=MOUNT, wrap_ttl="60s"
    )
    assert r.get("data") is None, f"a wrapped response carries no data: {r}"
    info = r["wrap_info"]
    assert info["ttl"] == 60, f"wrap_info.ttl: {info['ttl']!r}"
    assert info["creation_path"] == f"auth/{MOUNT}/role/{ROLE}/secret-id", info
    assert info["token"] and info["accessor"], info

    # Unwrap as the guide does: the wrapping token is the client's own token.
    unwrapped = hvac.Client(url=ADDR, token=info["token"]).sys.unwrap()
    sid = unwrapped["data"]["secret_id"]
    assert sid and unwrapped["data"]["secret_id_accessor"], unwrapped

    # A wrapping token is single-use.
    expect_raises(
        hvac.exceptions.VaultError,
        lambda: c.sys.unwrap(token=info["token"]),
        "second unwrap",
    )

    # And the other form: the wrapping token in the body, another token in the header.
    r2 = c.auth.approle.generate_secret_id(
        role_name=ROLE, mount_point=MOUNT, wrap_ttl=120
    )
    assert r2["wrap_info"]["ttl"] == 120, r2["wrap_info"]
    sid2 = c.sys.unwrap(token=r2["wrap_info"]["token"])["data"]["secret_id"]
    assert sid2 and sid2 != sid, "two wrapped secret IDs should differ"

    # The unwrapped secret ID logs in.
    login = hvac.Client(url=ADDR).auth.approle.login(
        role_id=state["role_id"], secret_id=sid, mount_point=MOUNT
    )
    assert login["auth"]["client_token"], login


# --- Step 4: AppRole login --------------------------------------------------------------


def step_login():
    c = hvac.Client(url=ADDR)
    r = c.auth.approle.login(
        role_id=state["role_id"], secret_id=state["secret_id"], mount_point=MOUNT
    )
    auth = r["auth"]
    assert auth["client_token"], r
    assert c.token == auth["client_token"], "hvac should adopt the login token"
    assert sorted(auth["policies"]) == sorted(["default", POLICY]), auth["policies"]
    assert sorted(auth["token_policies"]) == sorted(["default", POLICY]), auth
    assert auth["lease_duration"] == 3600, f"lease_duration: {auth['lease_duration']!r}"
    assert auth["renewable"] is True, auth
    assert auth["metadata"] == {"role_name": ROLE}, auth["metadata"]
    assert r["renewable"] is False, "top-level renewable must be false for a login"
    assert c.is_authenticated(), "the AppRole token should authenticate"
    state["app_token"] = auth["client_token"]
    state["app_accessor"] = auth["accessor"]

    expect_raises(
        hvac.exceptions.InvalidRequest,
        lambda: hvac.Client(url=ADDR).auth.approle.login(
            role_id=state["role_id"], secret_id="not-a-secret-id", mount_point=MOUNT
        ),
        "login with a wrong secret ID",
    )


# --- Step 5: read secrets with the AppRole token ----------------------------------------


def step_read_missing_secret():
    # "No value found at secret/mysql/webapp": hvac raises InvalidPath on the 404.
    expect_raises(
        hvac.exceptions.InvalidPath,
        lambda: app().secrets.kv.v2.read_secret_version(
            path=SECRET, mount_point="secret", raise_on_deleted_version=True
        ),
        "reading a secret that does not exist yet",
    )


def step_write_secret_as_admin():
    r = admin().secrets.kv.v2.create_or_update_secret(
        path=SECRET, secret=MYSQLDB, mount_point="secret"
    )
    assert r["data"]["version"] == 1, r
    assert r["data"]["destroyed"] is False, r


def step_read_secret_as_app():
    r = app().secrets.kv.v2.read_secret_version(
        path=SECRET, mount_point="secret", raise_on_deleted_version=True
    )
    assert r["data"]["data"] == MYSQLDB, r["data"]["data"]
    meta = r["data"]["metadata"]
    assert meta is not None, "data.metadata must not be null"
    assert meta["version"] == 1, meta
    assert meta["deletion_time"] == "" and meta["destroyed"] is False, meta
    assert meta["created_time"].endswith("Z"), meta


def step_app_write_denied():
    c = app()
    expect_raises(
        hvac.exceptions.Forbidden,
        lambda: c.secrets.kv.v2.create_or_update_secret(
            path=SECRET, secret={"password": "stolen"}, mount_point="secret"
        ),
        "AppRole token writing secret/data/mysql/webapp",
    )
    expect_raises(
        hvac.exceptions.Forbidden,
        lambda: c.secrets.kv.v2.read_secret_version(
            path="other/thing", mount_point="secret", raise_on_deleted_version=True
        ),
        "AppRole token reading outside secret/data/mysql/",
    )
    expect_raises(
        hvac.exceptions.Forbidden,
        lambda: c.sys.create_or_update_acl_policy(name="evil", policy='path "*" {}'),
        "AppRole token writing a policy",
    )
    # The admin's secret is unchanged.
    r = admin().secrets.kv.v2.read_secret_version(
        path=SECRET, mount_point="secret", raise_on_deleted_version=True
    )
    assert r["data"]["data"] == MYSQLDB, r["data"]["data"]
    assert r["data"]["metadata"]["version"] == 1, r["data"]["metadata"]


def step_kv_v2_versions_as_admin():
    c = admin()
    c.secrets.kv.v2.patch(path=SECRET, secret={"password": "n3w"}, mount_point="secret")
    r = c.secrets.kv.v2.read_secret_version(
        path=SECRET, mount_point="secret", raise_on_deleted_version=True
    )
    assert r["data"]["metadata"]["version"] == 2, r["data"]["metadata"]
    assert r["data"]["data"]["password"] == "n3w", r["data"]["data"]
    assert r["data"]["data"]["username"] == "admin", r["data"]["data"]
    old = c.secrets.kv.v2.read_secret_version(
        path=SECRET, version=1, mount_point="secret", raise_on_deleted_version=True
    )
    assert old["data"]["data"] == MYSQLDB, old
    meta = c.secrets.kv.v2.read_secret_metadata(path=SECRET, mount_point="secret")
    assert meta["data"]["current_version"] == 2, meta["data"]
    assert sorted(meta["data"]["versions"]) == ["1", "2"], meta["data"]["versions"]
    keys = c.secrets.kv.v2.list_secrets(path="mysql", mount_point="secret")["data"]["keys"]
    assert SECRET.split("/", 1)[1] in keys, keys


def step_kv_v2_delete_undelete_as_admin():
    c = admin()
    c.secrets.kv.v2.delete_latest_version_of_secret(path=SECRET, mount_point="secret")
    # hvac reads a deleted version's metadata out of Vault's 404-with-data answer.
    r = c.secrets.kv.v2.read_secret_version(
        path=SECRET, mount_point="secret", raise_on_deleted_version=False
    )
    assert r["data"]["data"] is None, r
    assert r["data"]["metadata"]["deletion_time"] != "", r["data"]["metadata"]
    expect_raises(
        hvac.exceptions.InvalidPath,
        lambda: c.secrets.kv.v2.read_secret_version(
            path=SECRET, mount_point="secret", raise_on_deleted_version=True
        ),
        "reading a deleted version with raise_on_deleted_version",
    )
    c.secrets.kv.v2.undelete_secret_versions(path=SECRET, versions=[2], mount_point="secret")
    r = c.secrets.kv.v2.read_secret_version(
        path=SECRET, mount_point="secret", raise_on_deleted_version=True
    )
    assert r["data"]["data"]["password"] == "n3w", r["data"]


def step_kv_v1():
    # The guide's other flavour: `path "secret/mysql/*"` on a kv-v1 mount.
    c = admin()
    mount = "kv1" + SUFFIX
    c.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    c.secrets.kv.v1.create_or_update_secret(path="mysql/webapp", secret=MYSQLDB, mount_point=mount)
    r = c.secrets.kv.v1.read_secret(path="mysql/webapp", mount_point=mount)
    assert r["data"] == MYSQLDB, r
    assert r["lease_duration"] == 2764800, f"kv-v1 lease_duration: {r['lease_duration']!r}"
    keys = c.secrets.kv.v1.list_secrets(path="mysql", mount_point=mount)["data"]["keys"]
    assert keys == ["webapp"], keys
    expect_raises(
        hvac.exceptions.Forbidden,
        lambda: app().secrets.kv.v1.read_secret(path="mysql/webapp", mount_point=mount),
        "the jenkins policy does not cover the kv-v1 mount",
    )


# --- Token self-service -----------------------------------------------------------------


def step_lookup_self():
    r = app().auth.token.lookup_self()
    data = r["data"]
    assert sorted(data["policies"]) == sorted(["default", POLICY]), data["policies"]
    assert isinstance(data["ttl"], int) and 0 < data["ttl"] <= 3600, f"ttl: {data['ttl']!r}"
    assert data["creation_ttl"] == 3600, data
    assert data["meta"] == {"role_name": ROLE}, data["meta"]
    assert data["accessor"] == state["app_accessor"], data
    assert data["path"] == f"auth/{MOUNT}/login", data["path"]
    assert data["renewable"] is True and data["orphan"] is True, data
    assert data["display_name"] == MOUNT, data["display_name"]
    assert data["id"] == state["app_token"], "lookup-self returns the token id"


def step_renew_self():
    c = app()
    r = c.auth.token.renew_self()
    assert r["auth"]["client_token"] == state["app_token"], r["auth"]
    assert r["auth"]["lease_duration"] == 3600, r["auth"]
    r = c.auth.token.renew_self(increment="2h")
    assert r["auth"]["lease_duration"] == 7200, r["auth"]
    ttl = c.auth.token.lookup_self()["data"]["ttl"]
    assert 3600 < ttl <= 7200, f"ttl after renewing by 2h: {ttl}"


# --- Limit the SecretID usages ----------------------------------------------------------


def step_secret_id_num_uses():
    c = admin()
    c.auth.approle.create_or_update_approle(
        role_name=ROLE,
        token_policies=[POLICY],
        token_ttl="1h",
        token_max_ttl="4h",
        secret_id_num_uses=10,
        mount_point=MOUNT,
    )
    assert c.auth.approle.read_role(role_name=ROLE, mount_point=MOUNT)["data"][
        "secret_id_num_uses"
    ] == 10
    sid = c.auth.approle.generate_secret_id(role_name=ROLE, mount_point=MOUNT)["data"]
    assert sid["secret_id_num_uses"] == 10, sid
    for i in range(10):
        r = hvac.Client(url=ADDR).auth.approle.login(
            role_id=state["role_id"], secret_id=sid["secret_id"], mount_point=MOUNT
        )
        assert r["auth"]["client_token"], f"login {i + 1} of 10: {r}"
    e = expect_raises(
        hvac.exceptions.InvalidRequest,
        lambda: hvac.Client(url=ADDR).auth.approle.login(
            role_id=state["role_id"], secret_id=sid["secret_id"], mount_point=MOUNT
        ),
        "the 11th login with a 10-use secret ID",
    )
    assert "invalid" in str(e).lower(), f"unexpected error text: {e}"
    # A secret ID issued before the change keeps its own (unlimited) uses.
    r = hvac.Client(url=ADDR).auth.approle.login(
        role_id=state["role_id"], secret_id=state["secret_id"], mount_point=MOUNT
    )
    assert r["auth"]["client_token"], r


def step_revoke_self():
    c = app()
    c.auth.token.revoke_self()
    assert not c.is_authenticated(), "a revoked token must not authenticate"
    expect_raises(
        hvac.exceptions.Forbidden,
        lambda: c.secrets.kv.v2.read_secret_version(
            path=SECRET, mount_point="secret", raise_on_deleted_version=True
        ),
        "reading with a revoked token",
    )


# --- Rate-limit the guide's logins (sys/quotas) -------------------------------------------


def step_rate_limit_the_roles_logins():
    c = admin()
    name = "guide-logins" + SUFFIX
    c.sys.create_or_update_quota(
        name=name, rate=1.0, path="auth/" + MOUNT, interval="1m", role=ROLE
    )
    q = c.sys.read_quota(name=name)["data"]
    assert q["path"] == "auth/" + MOUNT + "/", q
    assert (q["role"], q["rate"], q["interval"], q["type"]) == (ROLE, 1, 60, "rate-limit"), q
    assert name in c.sys.list_quotas()["data"]["keys"]
    role_id = c.auth.approle.read_role_id(role_name=ROLE, mount_point=MOUNT)["data"]["role_id"]
    fresh = lambda: c.auth.approle.generate_secret_id(role_name=ROLE, mount_point=MOUNT)[
        "data"
    ]["secret_id"]
    login = lambda secret_id: hvac.Client(url=ADDR).auth.approle.login(
        role_id=role_id, secret_id=secret_id, mount_point=MOUNT
    )
    assert login(fresh())["auth"]["client_token"]
    e = expect_raises(
        hvac.exceptions.RateLimitExceeded,
        lambda: login(fresh()),
        "a second login of the role within the minute",
    )
    assert "rate limit quota exceeded" in str(e), e
    c.sys.delete_quota(name=name)
    assert login(fresh())["auth"]["client_token"]


STEPS = [
    step_enable_approle,
    step_write_policy,
    step_create_role,
    step_role_id,
    step_secret_id,
    step_wrapped_secret_id,
    step_login,
    step_read_missing_secret,
    step_write_secret_as_admin,
    step_read_secret_as_app,
    step_app_write_denied,
    step_kv_v2_versions_as_admin,
    step_kv_v2_delete_undelete_as_admin,
    step_kv_v1,
    step_lookup_self,
    step_renew_self,
    step_secret_id_num_uses,
    step_revoke_self,
    step_rate_limit_the_roles_logins,
]


def main():
    print(f"hvac {importlib.metadata.version('hvac')} against {ADDR}")
    passed = failed = 0
    for step in STEPS:
        name = step.__name__.removeprefix("step_")
        try:
            step()
        except Exception:  # noqa: BLE001 - report any failure, then stop
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
            break
        passed += 1
        print(f"ok   {name}")
    skipped = len(STEPS) - passed - failed
    tail = f", {skipped} not run" if skipped else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 0 if failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
