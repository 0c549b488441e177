#!/usr/bin/env node
// The AppRole pull-authentication guide, driven through node-vault (the Node.js Vault client).
//
// Runs against VAULT_ADDR with the admin token VAULT_TOKEN, in the guide's order: enable AppRole,
// write the jenkins policy, create the role, fetch the RoleID and a SecretID (plain and
// response-wrapped), log in, then read the KV v2 secret with the AppRole token, check what the
// token may not do, look it up and renew it, and enforce secret_id_num_uses.
//
// Each step is a function; the first failing step stops the run (later steps depend on earlier
// ones). Prints one line per step and a final "N passed, M failed" line; exits non-zero on any
// failure. NAME_SUFFIX (optional) is appended to the auth mount, role, policy and secret names so
// the script can also be pointed at a shared Vault/OpenBao server for comparison.

'use strict';

const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const nodeVaultVersion = require('node-vault/package.json').version;

const ADDR = process.env.VAULT_ADDR;
const ROOT = process.env.VAULT_TOKEN;
const SUFFIX = process.env.NAME_SUFFIX || '';
assert.ok(ADDR, 'VAULT_ADDR must be set');
assert.ok(ROOT, 'VAULT_TOKEN must be set');

const MOUNT = `approle${SUFFIX}`;
const ROLE = `jenkins${SUFFIX}`;
const POLICY = `jenkins${SUFFIX}`;
const SECRET = `mysql/webapp${SUFFIX}`;
const POLICY_HCL = `
# Read-only permission on 'secret/data/mysql/*' path
path "secret/data/mysql/*" {
  capabilities = [ "read" ]
}
`;
const MYSQLDB = {
  url: 'foo.example.com:35533',
  db_name: 'users',
  username: 'admin',
  password: 'pa$$w0rd',
};

// Everything the steps learn, passed along in order.
const state = {};

const admin = () => nodeVault({ endpoint: ADDR, token: ROOT });
// No token at all: node-vault falls back to VAULT_TOKEN for a falsy `token`, so clear it after.
const anonymous = () => {
  const v = nodeVault({ endpoint: ADDR });
  v.token = undefined;
  return v;
};
const app = () => nodeVault({ endpoint: ADDR, token: state.appToken });

// Awaits `promise`, which must reject with an API error of HTTP `status`; returns the error.
async function rejectsWith(status, promise, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    assert.ok(e.response, `${what}: not an API error: ${e.stack || e}`);
    assert.equal(e.response.statusCode, status, `${what}: status (${e.message})`);
    return e;
  }
  assert.fail(`${what}: expected HTTP ${status}, got a response: ${JSON.stringify(result)}`);
}

// --- Step 1: enable AppRole -------------------------------------------------------------------

async function enableApprole() {
  const v = admin();
  const health = await v.health();
  assert.equal(health.initialized, true, 'sys/health: initialized');
  assert.equal(health.sealed, false, 'sys/health: sealed');
  await v.enableAuth({ mount_point: MOUNT, type: 'approle', description: 'guide' });
  const auths = await v.auths();
  const entry = auths.data[`${MOUNT}/`];
  assert.ok(entry, `${MOUNT}/ missing from sys/auth: ${Object.keys(auths.data)}`);
  assert.equal(entry.type, 'approle');
  const e = await rejectsWith(400, v.enableAuth({ mount_point: MOUNT, type: 'approle' }),
    'enabling twice');
  assert.match(e.message, /already in use/);
}

// --- Step 2: policy and role ------------------------------------------------------------------

async function writePolicy() {
  const v = admin();
  await v.addPolicy({ name: POLICY, rules: POLICY_HCL });
  const got = await v.getPolicy({ name: POLICY });
  assert.match(got.rules, /path "secret\/data\/mysql\/\*"/, 'policy rules read back');
  const list = await v.policies();
  assert.ok(list.policies.includes(POLICY), `${POLICY} not in ${list.policies}`);
}

async function createRole() {
  const v = admin();
  // `vault write auth/approle/role/jenkins token_policies="jenkins" token_ttl=1h token_max_ttl=4h`
  await v.write(`auth/${MOUNT}/role/${ROLE}`, {
    token_policies: POLICY,
    token_ttl: '1h',
    token_max_ttl: '4h',
  });
  const role = (await v.getApproleRole({ mount_point: MOUNT, role_name: ROLE })).data;
  assert.deepEqual(role.token_policies, [POLICY]);
  assert.equal(role.token_ttl, 3600);
  assert.equal(role.token_max_ttl, 14400);
  assert.equal(role.bind_secret_id, true);
  assert.equal(role.secret_id_num_uses, 0);
  const roles = await v.approleRoles({ mount_point: MOUNT });
  assert.deepEqual(roles.data.keys, [ROLE]);
}

// --- Step 3: RoleID and SecretID --------------------------------------------------------------

async function roleId() {
  const r = await admin().getApproleRoleId({ mount_point: MOUNT, role_name: ROLE });
  assert.equal(typeof r.data.role_id, 'string');
  assert.equal(r.data.role_id.length, 36, `role_id: ${r.data.role_id}`);
  state.roleId = r.data.role_id;
}

async function secretId() {
  const r = await admin().getApproleRoleSecret({ mount_point: MOUNT, role_name: ROLE });
  assert.ok(r.data.secret_id, 'secret_id');
  assert.ok(r.data.secret_id_accessor, 'secret_id_accessor');
  state.secretId = r.data.secret_id;
}

async function wrappedSecretId() {
  const v = admin();
  const r = await v.getApproleRoleSecret({
    mount_point: MOUNT,
    role_name: ROLE,
    requestOptions: { headers: { 'X-Vault-Wrap-TTL': '60s' } },
  });
  assert.equal(r.data, null, 'a wrapped response carries no data');
  assert.equal(r.wrap_info.ttl, 60);
  assert.equal(r.wrap_info.creation_path, `auth/${MOUNT}/role/${ROLE}/secret-id`);
  assert.ok(r.wrap_info.token && r.wrap_info.accessor);

  // As the guide does: the wrapping token is the client's own token (no body).
  const unwrapped = await nodeVault({ endpoint: ADDR, token: r.wrap_info.token }).unwrap();
  assert.ok(unwrapped.data.secret_id, 'unwrapped secret_id');
  assert.ok(unwrapped.data.secret_id_accessor, 'unwrapped secret_id_accessor');

  // Single use.
  await rejectsWith(400, v.unwrap({ token: r.wrap_info.token }), 'second unwrap');

  // The other form: generic write with the wrap header, the wrapping token in the body.
  const r2 = await v.write(`auth/${MOUNT}/role/${ROLE}/secret-id`, {},
    { headers: { 'X-Vault-Wrap-TTL': 120 } });
  assert.equal(r2.wrap_info.ttl, 120);
  const u2 = await v.unwrap({ token: r2.wrap_info.token });
  assert.ok(u2.data.secret_id && u2.data.secret_id !== unwrapped.data.secret_id);

  // The unwrapped secret ID logs in.
  const login = await anonymous().approleLogin({
    mount_point: MOUNT, role_id: state.roleId, secret_id: unwrapped.data.secret_id,
  });
  assert.ok(login.auth.client_token);
}

// --- Step 4: AppRole login --------------------------------------------------------------------

async function login() {
  const v = anonymous();
  const r = await v.approleLogin({
    mount_point: MOUNT, role_id: state.roleId, secret_id: state.secretId,
  });
  const { auth } = r;
  assert.ok(auth.client_token, 'client_token');
  assert.equal(v.token, auth.client_token, 'node-vault adopts the login token');
  assert.deepEqual([...auth.policies].sort(), ['default', POLICY].sort());
  assert.deepEqual([...auth.token_policies].sort(), ['default', POLICY].sort());
  assert.equal(auth.lease_duration, 3600);
  assert.equal(auth.renewable, true);
  assert.deepEqual(auth.metadata, { role_name: ROLE });
  assert.equal(r.renewable, false, 'top-level renewable');
  state.appToken = auth.client_token;
  state.appAccessor = auth.accessor;

  const e = await rejectsWith(400, anonymous().approleLogin({
    mount_point: MOUNT, role_id: state.roleId, secret_id: 'not-a-secret-id',
  }), 'login with a wrong secret ID');
  assert.match(e.message, /invalid/i);
}

// --- Step 5: read secrets with the AppRole token ----------------------------------------------

async function readMissingSecret() {
  // "No value found at secret/mysql/webapp": a 404 with an empty errors list.
  const e = await rejectsWith(404, app().read(`secret/data/${SECRET}`), 'missing secret');
  assert.deepEqual(e.response.body.errors, []);
}

async function writeSecretAsAdmin() {
  // `vault kv put secret/mysql/webapp @mysqldb.json`
  const r = await admin().write(`secret/data/${SECRET}`, { data: MYSQLDB });
  assert.equal(r.data.version, 1);
  assert.equal(r.data.destroyed, false);
}

async function readSecretAsApp() {
  const r = await app().read(`secret/data/${SECRET}`);
  assert.deepEqual(r.data.data, MYSQLDB);
  assert.ok(r.data.metadata, 'data.metadata must not be null');
  assert.equal(r.data.metadata.version, 1);
  assert.equal(r.data.metadata.destroyed, false);
  assert.equal(r.data.metadata.deletion_time, '');
}

async function appWriteDenied() {
  const v = app();
  const e = await rejectsWith(403,
    v.write(`secret/data/${SECRET}`, { data: { password: 'stolen' } }), 'AppRole write');
  assert.match(e.message, /permission denied/);
  await rejectsWith(403, v.read('secret/data/other/thing'), 'AppRole read outside its path');
  await rejectsWith(403, v.addPolicy({ name: 'evil', rules: 'path "*" {}' }),
    'AppRole policy write');
  const r = await admin().read(`secret/data/${SECRET}`);
  assert.deepEqual(r.data.data, MYSQLDB, 'secret unchanged');
}

async function kvV2AsAdmin() {
  const v = admin();
  // `vault kv patch`: PATCH with application/merge-patch+json.
  await v.update(`secret/data/${SECRET}`, { data: { password: 'n3w' } });
  const r = await v.read(`secret/data/${SECRET}`);
  assert.equal(r.data.metadata.version, 2);
  assert.equal(r.data.data.password, 'n3w');
  assert.equal(r.data.data.username, 'admin');
  const old = await v.read(`secret/data/${SECRET}?version=1`);
  assert.deepEqual(old.data.data, MYSQLDB);
  const list = await v.list('secret/metadata/mysql');
  assert.ok(list.data.keys.includes(SECRET.split('/')[1]), `keys: ${list.data.keys}`);
}

// --- Token self-service -----------------------------------------------------------------------

async function lookupSelf() {
  const r = await app().tokenLookupSelf();
  const d = r.data;
  assert.deepEqual([...d.policies].sort(), ['default', POLICY].sort());
  assert.ok(Number.isInteger(d.ttl) && d.ttl > 0 && d.ttl <= 3600, `ttl: ${d.ttl}`);
  assert.equal(d.creation_ttl, 3600);
  assert.deepEqual(d.meta, { role_name: ROLE });
  assert.equal(d.accessor, state.appAccessor);
  assert.equal(d.path, `auth/${MOUNT}/login`);
  assert.equal(d.id, state.appToken);
}

async function renewSelf() {
  const v = app();
  const r = await v.tokenRenewSelf();
  assert.equal(r.auth.client_token, state.appToken);
  assert.equal(r.auth.lease_duration, 3600);
  const r2 = await v.tokenRenewSelf({ increment: '2h' });
  assert.equal(r2.auth.lease_duration, 7200);
  const { ttl } = (await v.tokenLookupSelf()).data;
  assert.ok(ttl > 3600 && ttl <= 7200, `ttl after renewing by 2h: ${ttl}`);
}

// --- Limit the SecretID usages ----------------------------------------------------------------

async function secretIdNumUses() {
  const v = admin();
  // node-vault's own role call: the legacy `policies` field and integer TTLs.
  await v.addApproleRole({
    mount_point: MOUNT,
    role_name: ROLE,
    policies: POLICY,
    token_ttl: 3600,
    token_max_ttl: 14400,
    secret_id_num_uses: 10,
  });
  const role = (await v.getApproleRole({ mount_point: MOUNT, role_name: ROLE })).data;
  assert.equal(role.secret_id_num_uses, 10);
  assert.deepEqual(role.token_policies, [POLICY]);
  const sid = (await v.getApproleRoleSecret({ mount_point: MOUNT, role_name: ROLE })).data;
  assert.equal(sid.secret_id_num_uses, 10);
  for (let i = 1; i <= 10; i += 1) {
    const r = await anonymous().approleLogin({
      mount_point: MOUNT, role_id: state.roleId, secret_id: sid.secret_id,
    });
    assert.ok(r.auth.client_token, `login ${i} of 10`);
  }
  await rejectsWith(400, anonymous().approleLogin({
    mount_point: MOUNT, role_id: state.roleId, secret_id: sid.secret_id,
  }), 'the 11th login with a 10-use secret ID');
}

async function revokeSelf() {
  const v = app();
  await v.tokenRevokeSelf();
  await rejectsWith(403, v.tokenLookupSelf(), 'lookup-self with a revoked token');
  await rejectsWith(403, v.read(`secret/data/${SECRET}`), 'read with a revoked token');
}

const STEPS = [
  enableApprole,
  writePolicy,
  createRole,
  roleId,
  secretId,
  wrappedSecretId,
  login,
  readMissingSecret,
  writeSecretAsAdmin,
  readSecretAsApp,
  appWriteDenied,
  kvV2AsAdmin,
  lookupSelf,
  renewSelf,
  secretIdNumUses,
  revokeSelf,
];

async function main() {
  console.log(`node-vault ${nodeVaultVersion} (node ${process.version}) against ${ADDR}`);
  let passed = 0;
  let failed = 0;
  for (const step of STEPS) {
    try {
      await step();
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${step.name}`);
      console.log(e && e.stack ? e.stack : e);
      if (e && e.response) console.log(`response: ${JSON.stringify(e.response)}`);
      break;
    }
    passed += 1;
    console.log(`ok   ${step.name}`);
  }
  const skipped = STEPS.length - passed - failed;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} not run` : ''}`);
  process.exitCode = failed === 0 && skipped === 0 ? 0 : 1;
}

main();
