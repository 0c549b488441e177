//! Text of the built-in policies every Coffer server has (contract §3.13): `default`, attached to
//! ordinary tokens unless suppressed, and `response-wrapping`, the only policy of a wrapping
//! token. Both are plain policy text so they go through the same parser as user policies.

/// HCL text of the `default` policy: the same paths and capabilities as Vault's.
pub const DEFAULT_POLICY: &str = r#"
# Inspect the calling token itself (GET only).
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Extend the calling token's lease.
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Give up the calling token.
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Ask which capabilities the calling token holds on a list of paths.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Read the identity entity behind the token (templated; resolved per request).
path "identity/entity/id/{{identity.entity.id}}" {
    capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
    capabilities = ["read"]
}

# The UI asks for the token's merged ACL here.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Renew a lease whose id is given in the request body (old and new endpoint).
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Look up a lease by id; knowing the id is the credential.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Every token owns a private cubbyhole.
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Response-wrapping helpers: wrap arbitrary data, inspect and unwrap wrapping tokens.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Hashing tool.
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Status of a control-group request, for holders of its accessor (Enterprise feature path).
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Authorization endpoint of any OIDC provider.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;

/// HCL text of the `response-wrapping` policy: read the wrapped response out of the token's own
/// cubbyhole and unwrap it.
pub const RESPONSE_WRAPPING_POLICY: &str = r#"
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;
