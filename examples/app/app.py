"""The seed system's REST API rebuilt on authz_ext: every handler is one SQL call, run in a
transaction that first authenticates the request's API key (Authorization: Bearer azk_…)
with authz_authenticate. Permissions and key scopes are enforced in the database
(authz_can, app_require, RLS on documents); this file only maps SQLSTATEs to HTTP codes.

Run:  AUTHZ_APP_DSN="host=... dbname=... user=authz_app password=authz_app" \\
        uvicorn app:app --app-dir examples/app
(examples/app/schema.sql creates the role, the documents table and its policy.)"""
import os
from datetime import datetime

import psycopg
from fastapi import FastAPI, Header, HTTPException, Response
from psycopg.rows import dict_row
from pydantic import BaseModel

DSN = os.environ.get("AUTHZ_APP_DSN", "")
app = FastAPI(title="authz_ext example")

# What the database's errors mean over HTTP.
STATUS = {"28000": 401, "42501": 403, "22023": 400, "22004": 400, "22P02": 400}


def run(authorization, sql, params=(), one=False):
    """Authenticates the request, then runs the handler's one statement, in one transaction."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing Authorization: Bearer <api key>")
    try:
        with psycopg.connect(DSN, row_factory=dict_row) as conn, conn.transaction():
            conn.execute("SELECT authz_authenticate(%s)", (authorization[len("Bearer "):],))
            rows = conn.execute(sql, params).fetchall()
    except psycopg.Error as e:
        code = STATUS.get(e.sqlstate)
        if code is None:
            raise
        raise HTTPException(code, e.diag.message_primary) from None
    if one:
        if not rows:
            raise HTTPException(404, "not found")
        return rows[0]
    return rows


class NewKey(BaseModel):
    name: str
    scopes: list[str]
    expires_at: datetime | None = None


class Check(BaseModel):
    permission: str
    resource_id: str | None = None
    user_id: str | None = None  # another user's check needs user:read


class GrantRequest(BaseModel):
    user_id: str
    permission: str
    resource_id: str | None = None
    expires_at: datetime | None = None
    effect: str = "allow"


class RevokeRequest(BaseModel):
    user_id: str
    permission: str
    resource_id: str | None = None


@app.post("/api-keys", status_code=201)
def create_key(body: NewKey, authorization: str = Header(None)):
    return run(authorization, """SELECT k.* FROM app_require('api_key:create'),
                                 api_key_create(authz_current_user(), %s, %s, %s) k""",
               (body.name, body.scopes, body.expires_at), one=True)


@app.get("/api-keys")
def list_keys(authorization: str = Header(None)):
    return run(authorization, "SELECT k.* FROM app_require('api_key:read'), api_key_list(authz_current_user()) k")


@app.get("/api-keys/{key_id}")
def get_key(key_id: str, authorization: str = Header(None)):
    return run(authorization, """SELECT k.* FROM app_require('api_key:read'),
                                 api_key_get(authz_current_user(), %s::uuid) k""", (key_id,), one=True)


@app.delete("/api-keys/{key_id}")
def revoke_key(key_id: str, authorization: str = Header(None)):
    # Only one's own key: api_key_get returns no row for someone else's.
    return run(authorization, """SELECT api_key_revoke(k.key_id, authz_current_user()) AS revoked
                                 FROM app_require('api_key:delete'), api_key_get(authz_current_user(), %s::uuid) k""",
               (key_id,), one=True)


@app.post("/permissions/check")
def check(body: Check, authorization: str = Header(None)):
    if body.user_id is None:
        return run(authorization, "SELECT authz_can(%s, %s::text) AS allowed",
                   (body.permission, body.resource_id), one=True)
    return run(authorization, "SELECT authz_check(%s::text, %s, %s::text) AS allowed FROM app_require('user:read')",
               (body.user_id, body.permission, body.resource_id), one=True)


@app.get("/permissions/me")
def my_permissions(authorization: str = Header(None)):
    return run(authorization, "SELECT * FROM authz_user_permissions(authz_current_user())")


@app.get("/permissions/{user_id}")
def user_permissions(user_id: str, authorization: str = Header(None)):
    return run(authorization, "SELECT p.* FROM app_require('user:read'), authz_user_permissions(%s::text) p",
               (user_id,))


@app.post("/permissions/grant", status_code=201)
def grant(body: GrantRequest, authorization: str = Header(None)):
    return run(authorization, """SELECT authz_grant(%s::text, %s, %s::text, %s, %s, authz_current_user()) AS grant_id
                                 FROM app_require('user:update')""",
               (body.user_id, body.permission, body.resource_id, body.expires_at, body.effect), one=True)


@app.delete("/permissions/revoke")
def revoke(body: RevokeRequest, authorization: str = Header(None)):
    return run(authorization, """SELECT authz_revoke(%s::text, %s, %s::text) AS revoked
                                 FROM app_require('user:update')""",
               (body.user_id, body.permission, body.resource_id), one=True)


@app.get("/documents")
def documents(authorization: str = Header(None)):
    return run(authorization, "SELECT id, title FROM documents ORDER BY id")


@app.get("/documents/{document_id}")
def document(document_id: int, authorization: str = Header(None)):
    return run(authorization, "SELECT id, title FROM documents WHERE id = %s", (document_id,), one=True)


@app.get("/health")
def health():
    return Response("ok", media_type="text/plain")
