//! API keys: create, validate, revoke, list. The token is generated, checked and hashed in
//! Rust (core::token); SQL only ever sees its SHA-256 and preview, so no statement, log
//! line or error message can contain it.

use super::admin::{call, required, rows, stored_user};
use super::cache;
use super::clock;
use super::latest::{self, value, IndexKey};
use super::gucs::KEY_LAST_USED_INTERVAL;
use super::ids::optional_id_text;
use super::owner::as_owner;
use super::report::OrRaise;
use super::srf::{self, Rows};
use super::args::Args;
use super::stats;
use super::subxact;
use crate::core::error::Error;
use crate::core::keys::{self, KeyState, Status};
use crate::core::token;
use pgrx::prelude::*;
use pgrx::{AnyElement, Uuid};
use std::cell::Cell;
use std::rc::Rc;

#[pg_extern(sql = false)]
fn api_key_create(
    user_id: Option<AnyElement>,
    name: Option<&str>,
    scopes: Option<Vec<Option<String>>>,
    expires_at: Option<TimestampWithTimeZone>,
) -> TableIterator<'static, (name!(key_id, Uuid), name!(token, String), name!(preview, String))> {
    let user = stored_user(user_id);
    let name = required("name", name);
    let scopes = scopes.ok_or(Error::NullValue { parameter: "scopes" }).or_raise();
    let new = token::generate(|buf| {
        getrandom::getrandom(buf).unwrap_or_else(|e| pgrx::error!("could not read random bytes: {e}"))
    });
    let key_id = call::<Uuid>(
        "create_key",
        vec![
            user.into(),
            name.into(),
            scopes.into(),
            expires_at.into(),
            new.hash.as_slice().into(),
            new.preview.as_str().into(),
        ],
        None,
    )
    .expect("create_key returns the key id");
    TableIterator::once((key_id, new.token, new.preview))
}

/// What a lookup by hash finds.
pub struct StoredKey {
    pub(super) key_id: Option<Uuid>,
    pub(super) user_id: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: Option<TimestampWithTimeZone>,
    revoked: bool,
    /// As read, or as this backend last wrote it (cache::key_used).
    pub(super) last_used_at: Cell<Option<i64>>,
}

/// A key as the keys shared by every backend hold it (cache::Shared): 1 (a key; 0: no such
/// key), flags, then the fields present: key id (16 bytes), expiry (8, PostgreSQL
/// microseconds), user id (2-byte length and bytes), scopes (2-byte count, each as the user
/// id); its last use is the hint (0: none known). A key whose user and scopes do not fit is
/// not shared.
impl cache::Shared for Option<Rc<StoredKey>> {
    fn encode(&self) -> (Vec<u8>, u64) {
        let Some(key) = self else {
            return (vec![0], 0);
        };
        let flags = [key.key_id.is_some(), key.user_id.is_some(), key.scopes.is_some(), key.expires_at.is_some(), key.revoked];
        let mut bytes = vec![1, flags.iter().rev().fold(0u8, |f, set| f << 1 | u8::from(*set))];
        if let Some(id) = key.key_id {
            bytes.extend_from_slice(id.as_bytes());
        }
        if let Some(expires_at) = key.expires_at {
            bytes.extend_from_slice(&i64::from(expires_at).to_le_bytes());
        }
        if let Some(user) = &key.user_id {
            put_text(&mut bytes, user);
        }
        if let Some(scopes) = &key.scopes {
            put_length(&mut bytes, scopes.len());
            scopes.iter().for_each(|scope| put_text(&mut bytes, scope));
        }
        (bytes, key.last_used_at.get().and_then(|at| u64::try_from(at).ok()).unwrap_or(0))
    }

    fn decode(bytes: &[u8], last_used: u64) -> Option<Self> {
        let mut bytes = Encoded(bytes);
        if bytes.take(1)? == [0] {
            return Some(None);
        }
        let flags = bytes.take(1)?[0];
        let has = |i: u8| flags & (1 << i) != 0;
        let key_id = match has(0) {
            true => Some(Uuid::from_bytes(bytes.take(16)?.try_into().ok()?)),
            false => None,
        };
        let expires_at = match has(3) {
            true => Some(TimestampWithTimeZone::try_from(bytes.i64()?).ok()?),
            false => None,
        };
        let user_id = match has(1) {
            true => Some(bytes.text()?),
            false => None,
        };
        let scopes = match has(2) {
            true => Some((0..bytes.length()?).map(|_| bytes.text()).collect::<Option<Vec<_>>>()?),
            false => None,
        };
        let last_used_at = i64::try_from(last_used).ok().filter(|at| *at > 0);
        let key = StoredKey { key_id, user_id, scopes, expires_at, revoked: has(4), last_used_at: Cell::new(last_used_at) };
        Some(Some(Rc::new(key)))
    }
}

fn put_length(bytes: &mut Vec<u8>, n: usize) {
    bytes.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
}

fn put_text(bytes: &mut Vec<u8>, text: &str) {
    put_length(bytes, text.len());
    bytes.extend_from_slice(text.as_bytes());
}

/// The shared keys' encoding, read in order.
struct Encoded<'a>(&'a [u8]);

impl<'a> Encoded<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(taken)
    }

    fn length(&mut self) -> Option<usize> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?).into())
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let n = self.length()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

impl cache::Footprint for StoredKey {
    fn bytes(&self) -> usize {
        let scopes = self.scopes.as_deref().unwrap_or_default();
        self.user_id.as_ref().map_or(0, String::capacity) + scopes.iter().map(|s| 24 + s.capacity()).sum::<usize>()
    }
}

/// The key with this token hash, read through the unique index on `key_hash`, and its
/// `last_used_at` through the usage table's primary key (see latest::Reader).
fn find_key(hash: &[u8; 32]) -> Option<StoredKey> {
    stats::bump(stats::Counter::KeyReads);
    let hash = hash.as_slice().into_datum().expect("a bytea datum");
    let reader = latest::Reader::new();
    let columns = [c"id", c"user_id", c"scopes", c"expires_at", c"revoked_at"];
    let by_hash = [IndexKey::equal(pg_sys::F_BYTEAEQ, hash)];
    let key = reader
        .lookup((c"api_keys", c"api_keys_key_hash_key"), &by_hash, &columns, Some(1), |v| StoredKey {
            key_id: value(v[0]),
            user_id: value(v[1]),
            scopes: value(v[2]),
            expires_at: value(v[3]),
            revoked: v[4].is_some(),
            last_used_at: Cell::new(None),
        })
        .pop()?;
    let by_id = [IndexKey::equal(pg_sys::F_UUID_EQ, key.key_id.into_datum().expect("a uuid datum"))];
    let last_used_at = reader
        .lookup((c"api_key_usage", c"api_key_usage_pkey"), &by_id, &[c"last_used_at"], Some(1), |v| {
            value::<TimestampWithTimeZone>(v[0])
        })
        .pop()
        .flatten()
        .map(i64::from);
    key.last_used_at.set(last_used_at);
    Some(key)
}

/// One row (valid, status, key_id, user_id, scopes, expires_at; sql/api.sql), returned in
/// materialize mode (srf.rs).
#[pg_extern(sql = false)]
fn api_key_validate(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: pgrx passes the call's own fcinfo.
    let token = unsafe { Args::new(fcinfo) }.get::<&str>(0);
    let (status, key) = validate(token);
    use pg_sys::{BOOLOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID, UUIDOID};
    let mut result = Rows::begin(fcinfo, |rsinfo| srf::expected(rsinfo, &[BOOLOID, TEXTOID, UUIDOID, TEXTOID, TEXTARRAYOID, TIMESTAMPTZOID]));
    let key = key.as_ref();
    let columns = [
        Some(key.is_some().into()),
        status.as_str().into_datum(),
        key.and_then(|k| k.key_id).into_datum(),
        key.and_then(|k| k.user_id.as_deref()).into_datum(),
        key.and_then(|k| k.scopes.clone()).into_datum(),
        key.and_then(|k| k.expires_at).into_datum(),
    ];
    let mut nulls = columns.map(|c| c.is_none());
    let mut values = columns.map(|c| c.unwrap_or(pg_sys::Datum::from(0)));
    result.put(&mut values, &mut nulls);
}

/// The status of a token, with the key when it is valid (and its use noted); counted.
pub(super) fn validate(token: Option<&str>) -> (Status, Option<Rc<StoredKey>>) {
    let result = look_up(token);
    stats::key_validated(result.0);
    result
}

fn look_up(token: Option<&str>) -> (Status, Option<Rc<StoredKey>>) {
    if let Some(status) = keys::precheck(token) {
        return (status, None);
    }
    // Read once while nothing changes (cache/keys.rs); the status is decided every time.
    let hash = token::hash(token.expect("precheck passed a token"));
    let key = cache::key_by_hash(hash, || find_key(&hash).map(Rc::new));
    let state = key.as_ref().map(|k| KeyState { revoked: k.revoked, expires_at: k.expires_at.map(i64::from) });
    let now = clock::now();
    match keys::status(state, now) {
        Status::Valid => {
            let key = key.expect("a valid key was found");
            if note_use(&key, now) {
                key.last_used_at.set(Some(now));
                cache::key_used(&hash, now);
            }
            (Status::Valid, Some(key))
        }
        status => (status, None),
    }
}

/// Writes `last_used_at` when it is older than authz.key_last_used_interval: never in a
/// read-only transaction, a parallel worker or on a hot standby, and never so that
/// validation fails (a concurrent update or lock is skipped, see subxact.rs). Whether it
/// tried: then `last_used_at` is recent, whoever wrote it.
fn note_use(key: &StoredKey, now: i64) -> bool {
    let interval = KEY_LAST_USED_INTERVAL.get();
    if !keys::last_used_due(key.last_used_at.get(), now, interval) {
        return false;
    }
    // SAFETY: plain reads of backend state.
    let writable = unsafe { !pg_sys::XactReadOnly && !pg_sys::RecoveryInProgress() && !pg_sys::IsInParallelMode() };
    if !writable {
        return false;
    }
    let stamp = |micros: i64| TimestampWithTimeZone::try_from(micros).expect("within the timestamp range");
    let args = [key.key_id.into(), stamp(now).into(), stamp(now - i64::from(interval) * 1_000_000).into()];
    as_owner(|| {
        subxact::attempt(|| {
            // The condition is checked again under the row lock (another session may have
            // just written), and SKIP LOCKED leaves a key someone is writing right now alone.
            // (A missing usage row, as after a partial restore, just means no write.)
            Spi::run_with_args(
                "UPDATE authz.api_key_usage SET last_used_at = $2
                 WHERE key_id OPERATOR(pg_catalog.=) (
                     SELECT key_id FROM authz.api_key_usage
                     WHERE key_id OPERATOR(pg_catalog.=) $1
                       AND (last_used_at IS NULL OR last_used_at OPERATOR(pg_catalog.<=) $3)
                     FOR NO KEY UPDATE SKIP LOCKED)",
                &args,
            )
            .expect("errors are raised, not returned");
        })
    });
    true
}

#[pg_extern(sql = false)]
fn api_key_revoke(key_id: Option<Uuid>, revoked_by: Option<AnyElement>) -> bool {
    let key_id = key_id.ok_or(Error::NullValue { parameter: "key_id" }).or_raise();
    let revoked_by = optional_id_text("revoked_by", revoked_by).or_raise();
    call::<bool>("revoke_key", vec![key_id.into()], revoked_by).expect("revoke_key returns a boolean")
}

/// key_id, name, preview, scopes, created_at, expires_at, last_used_at, revoked_at (the
/// column names are declared in sql/api.sql; pgrx wants the tuple spelled out in each
/// signature).
type KeyRow = (
    Uuid,
    String,
    String,
    Vec<String>,
    TimestampWithTimeZone,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
);

fn list_keys(user_id: Option<AnyElement>, key_id: Option<Uuid>) -> Vec<KeyRow> {
    let Some(user) = optional_id_text("user_id", user_id).or_raise() else {
        return Vec::new();
    };
    rows("list_keys", &[user.into(), key_id.into()], |row| {
        (
            row.get::<Uuid>(1).ok().flatten().expect("key id is NOT NULL"),
            row.get::<String>(2).ok().flatten().unwrap_or_default(),
            row.get::<String>(3).ok().flatten().unwrap_or_default(),
            row.get::<Vec<String>>(4).ok().flatten().unwrap_or_default(),
            row.get::<TimestampWithTimeZone>(5).ok().flatten().expect("created_at is NOT NULL"),
            row.get::<TimestampWithTimeZone>(6).ok().flatten(),
            row.get::<TimestampWithTimeZone>(7).ok().flatten(),
            row.get::<TimestampWithTimeZone>(8).ok().flatten(),
        )
    })
}

#[pg_extern(sql = false)]
fn api_key_list(user_id: Option<AnyElement>) -> TableIterator<
    'static,
    (
        Uuid,
        String,
        String,
        Vec<String>,
        TimestampWithTimeZone,
        Option<TimestampWithTimeZone>,
        Option<TimestampWithTimeZone>,
        Option<TimestampWithTimeZone>,
    ),
> {
    TableIterator::new(list_keys(user_id, None))
}

#[pg_extern(sql = false)]
fn api_key_get(user_id: Option<AnyElement>, key_id: Option<Uuid>) -> TableIterator<
    'static,
    (
        Uuid,
        String,
        String,
        Vec<String>,
        TimestampWithTimeZone,
        Option<TimestampWithTimeZone>,
        Option<TimestampWithTimeZone>,
        Option<TimestampWithTimeZone>,
    ),
> {
    let found = match key_id {
        Some(id) => list_keys(user_id, Some(id)),
        None => Vec::new(),
    };
    TableIterator::new(found)
}
