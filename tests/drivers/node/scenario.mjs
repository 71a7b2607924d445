// The application scenario of tests/integration/test_drivers.py through node-postgres,
// which sends every parameter untyped: ids as JavaScript numbers and strings, no casts in
// the SQL. Exits non-zero, with the failed step, on the first difference.
import assert from "node:assert/strict";
import pg from "pg";

const { AUTHZ_DRIVER_HOST: host, AUTHZ_DRIVER_PORT: port, AUTHZ_DRIVER_DB: database } = process.env;
const admin = new pg.Client({ host, port, database, user: "postgres" });
const app = new pg.Client({ host, port, database, user: "driver_app" });

async function one(client, sql, params) {
  const { rows } = await client.query(sql, params);
  return rows[0];
}
const check = async (user, resource) =>
  (await one(app, "SELECT authz_check($1, $2, $3) AS allowed", [user, "document:read", resource])).allowed;

await admin.connect();
await app.connect();
try {
  // Grants, with ids as numbers, as strings, and mixed with a NULL.
  const grantId = (await one(admin, "SELECT authz_grant($1, $2, $3) AS id", [42, "document:read", 1])).id;
  assert.ok(Number(grantId) > 0, "grant returns its id");
  await admin.query("SELECT authz_grant($1, $2, $3)", ["alice", "document:read", "2"]);
  await admin.query("SELECT authz_grant($1, $2, $3, $4, $5)", [42, "document:read", "3", null, "deny"]);
  await admin.query("SELECT authz_set_role($1, $2)", [7, "viewer"]);

  // Checks and explain, untyped.
  assert.equal(await check(42, 1), true, "42 may read 1");
  assert.equal(await check("42", "1"), true, "the same id as a string");
  assert.equal(await check(42, 3), false, "the deny on 3");
  assert.equal(await check("alice", 2), true, "alice may read 2");
  assert.equal(await check(7, 99), true, "a viewer reads any document");
  assert.equal((await one(app, "SELECT authz_check($1, $2) AS allowed", [42, "document:read"])).allowed, false);
  const explained = await one(app, "SELECT allowed, decided_by FROM authz_explain($1, $2, $3)", [42, "document:read", 3]);
  assert.deepEqual(explained, { allowed: false, decided_by: "resource" });

  // A key: created, validated.
  const { token } = await one(admin, "SELECT token FROM api_key_create($1, $2, $3)", [42, "node key", ["documents:read"]]);
  const validated = await one(app, "SELECT valid, status, user_id FROM api_key_validate($1)", [token]);
  assert.deepEqual(validated, { valid: true, status: "valid", user_id: "42" });

  // Authenticate, then an RLS query with a parameter, in one transaction.
  await app.query("BEGIN");
  assert.equal((await one(app, "SELECT authz_authenticate($1) AS user_id", [token])).user_id, "42");
  const { rows } = await app.query("SELECT id FROM documents WHERE id = ANY($1) ORDER BY id", [[1, 2, 3]]);
  assert.deepEqual(rows.map((r) => Number(r.id)), [1], "RLS shows document 1 only");
  assert.equal((await one(app, "SELECT authz_can($1, $2) AS allowed", ["document:read", 3])).allowed, false);
  await app.query("COMMIT");

  // A revoke is seen at once.
  assert.equal((await one(admin, "SELECT authz_revoke($1, $2, $3) AS revoked", [42, "document:read", 1])).revoked, true);
  assert.equal(await check(42, 1), false, "revoked");
  console.log("node-postgres: scenario passed");
} finally {
  await app.end();
  await admin.end();
}
