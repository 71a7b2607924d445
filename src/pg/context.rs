//! The request context: authz_authenticate, authz_set_user, authz_current_user, authz_can.
//!
//! The principal is backend memory (core::context), not a setting, so no SET, SET LOCAL,
//! set_config or RESET can touch it; only the two functions set it. PostgreSQL's
//! transaction callbacks end it with the transaction and undo it with a rolled-back
//! savepoint, so the next transaction on a pooled connection starts with none.

use super::cache::{self, KeyGrant};
use super::args::Args;
use super::checks::{self, KeyMemo, Site};
use super::clock;
use super::latest::{self, Statement};
use super::local::Local;
use super::ids::{optional_id_text, IdRef};
use super::keys::validate;
use super::owner::as_owner;
use super::report::{raise, OrRaise};
use super::stats;
use crate::core::context::{Context, Principal};
use crate::core::error::Error;
use crate::core::ids::Id;
use crate::core::ids::validate_for_storage;
use crate::core::keys::{self, KeyState, Status};
use pgrx::prelude::*;
use pgrx::{AnyElement, Uuid};
use std::cell::RefCell;
use std::rc::Rc;
use std::ffi::c_void;

static CONTEXT: Local<RefCell<Context>> = Local::new(RefCell::new(Context::new()));

/// Registers the transaction callbacks; called once, when the library is loaded.
pub fn register_callbacks() {
    // SAFETY: plain registrations of functions that live as long as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_transaction_event), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction_event), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_event(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PARALLEL_ABORT) {
        CONTEXT.borrow_mut().end_transaction();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_event(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_COMMIT_SUB => CONTEXT.borrow_mut().commit_sub(sub, parent),
        SUBXACT_EVENT_ABORT_SUB => CONTEXT.borrow_mut().abort_sub(sub),
        _ => {}
    }
}

fn set_principal(principal: Option<Principal>) {
    // SAFETY: always valid inside a transaction.
    let level = unsafe { pg_sys::GetCurrentSubTransactionId() };
    CONTEXT.borrow_mut().set(level, principal);
}

fn principal() -> Option<Principal> {
    CONTEXT.borrow().current().cloned()
}

/// The principal's user id, for the audit log of changes made in this transaction.
pub fn current_user() -> Option<String> {
    principal().map(|p| p.user.to_string())
}

#[pg_extern(sql = false)]
fn authz_authenticate(token: Option<&str>) -> String {
    match validate(token) {
        (Status::Valid, Some(key)) => {
            let user = key.user_id.clone().expect("a stored key has an owner");
            let key_id = key.key_id.expect("a stored key has an id");
            set_principal(Some(Principal { user: user.as_str().into(), key_id: Some(*key_id.as_bytes()) }));
            user
        }
        (status, _) => {
            stats::log_denial(&format!("API key rejected: {}", status.as_str()));
            raise(Error::Unauthenticated { status: status.as_str() })
        }
    }
}

#[pg_extern(sql = false)]
fn authz_set_user(user_id: Option<AnyElement>) {
    let user = optional_id_text("user_id", user_id).or_raise();
    if let Some(u) = &user {
        validate_for_storage("user_id", u).or_raise();
    }
    set_principal(user.map(|user| Principal { user: user.into(), key_id: None }));
}

#[pg_extern(sql = false)]
fn authz_current_user() -> Option<String> {
    current_user()
}

#[pg_extern(sql = false)]
fn authz_can(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    let Some(principal) = principal() else {
        return false;
    };
    // SAFETY: pgrx passes the call's own fcinfo, and fn_extra is used by nothing else.
    let (args, site) = unsafe { (Args::new(fcinfo), Site::of(fcinfo)) };
    let permission: Option<&str> = args.get(0);
    let resource = site.id(&args, 1, "resource_id");
    let allowed = site.allowed(Id::Text(&principal.user), permission, resource.as_ref().map(IdRef::id));
    let allowed = match (allowed, principal.key_id, permission) {
        (true, Some(key_id), Some(permission)) => {
            let (allows, memo) = key_allows(key_id, permission);
            site.set_key_memo(memo);
            allows
        }
        (allowed, _, _) => allowed,
    };
    checks::count(allowed);
    allowed
}

/// authz_can as PostgreSQL calls it (sql/api.sql): see checks::fast_or_guarded.
///
/// # Safety
/// Called by PostgreSQL with the call's own `fcinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn authz_can_fast(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the call's own fcinfo, and authz_can's pgrx-generated function.
    unsafe { checks::fast_or_guarded(fcinfo, remembered_can, authz_can_wrapper) }
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_authz_can_fast() -> &'static pg_sys::Pg_finfo_record {
    &checks::V1
}

/// authz_can's answer from what its call site remembers (of the key too), if they may
/// answer without looking at anything; None otherwise. Raises nothing.
///
/// # Safety
/// `fcinfo` is the call's own.
unsafe fn remembered_can(fcinfo: pg_sys::FunctionCallInfo) -> Option<bool> {
    // SAFETY: the call's own fcinfo.
    let (site, args) = unsafe { (Site::remembering(fcinfo)?, Args::new(fcinfo)) };
    let context = CONTEXT.borrow();
    let principal = context.current()?;
    match (site.remembered(&args, Id::Text(&principal.user), 0)?, principal.key_id) {
        (true, Some(key_id)) => {
            let memo = site.key_memo().filter(|m| m.key_id == key_id && cache::key_grant_current_without_looking(m.generation))?;
            Some(memo.covered && unexpired(memo.expires_at))
        }
        (allowed, _) => Some(allowed),
    }
}

static KEY_GRANT: Statement = Statement {
    sql: c"SELECT k.revoked_at IS NOT NULL, k.expires_at,
                  EXISTS (SELECT FROM authz.scopes s
                          WHERE s.name OPERATOR(pg_catalog.=) ANY (k.scopes) AND s.all_permissions),
                  ARRAY(SELECT sp.permission
                        FROM authz.scopes s JOIN authz.scope_permissions sp ON sp.scope OPERATOR(pg_catalog.=) s.name
                        WHERE s.name OPERATOR(pg_catalog.=) ANY (k.scopes))
           FROM authz.api_keys k WHERE k.id OPERATOR(pg_catalog.=) $1",
    arg_types: &[pg_sys::UUIDOID],
};

/// The key a key principal's checks last read, while current.
struct LastKey {
    key_id: [u8; 16],
    grant: Option<Rc<KeyGrant>>,
    generation: u64,
}

thread_local! {
    static LAST_KEY: RefCell<Option<LastKey>> = const { RefCell::new(None) };
}

/// Whether the principal's key is still live (a revocation or expiry since
/// authz_authenticate counts from the next statement) and has a scope covering the
/// permission. The key is read once while nothing changes (cache/keys.rs), and a scan
/// checking row after row reuses the last one read; with the memo returned, the call site
/// answers its next rows itself (`remembered_can`).
fn key_allows(key_id: [u8; 16], permission: &str) -> (bool, Option<KeyMemo>) {
    let remembered = LAST_KEY.with_borrow(|last| {
        last.as_ref()
            .filter(|k| k.key_id == key_id && cache::key_grant_current(k.generation))
            .map(|k| (k.grant.clone(), Some(k.generation)))
    });
    let (grant, generation) = remembered.unwrap_or_else(|| {
        let (grant, generation) = cache::key_grant(key_id, || read_key_grant(key_id));
        LAST_KEY.set(generation.map(|generation| LastKey { key_id, grant: grant.clone(), generation }));
        (grant, generation)
    });
    // No such key: not covered (and so never allowed).
    let covered = grant.as_ref().is_some_and(|g| g.covers(permission) && !g.revoked);
    let expires_at = grant.as_ref().and_then(|g| g.expires_at);
    let memo = generation.map(|generation| KeyMemo { key_id, generation, covered, expires_at });
    (covered && unexpired(expires_at), memo)
}

/// Whether a key that is not revoked has not expired by now (the clock is read only when
/// it expires).
fn unexpired(expires_at: Option<i64>) -> bool {
    let now = if expires_at.is_some() { clock::now() } else { 0 };
    keys::status(Some(KeyState { revoked: false, expires_at }), now) == Status::Valid
}

fn read_key_grant(key_id: [u8; 16]) -> Option<KeyGrant> {
    let args = [Uuid::from_bytes(key_id).into_datum()];
    as_owner(|| {
        latest::query(&KEY_GRANT, &args, |row| KeyGrant {
            revoked: row.get::<bool>(1).unwrap_or(true),
            expires_at: row.get::<TimestampWithTimeZone>(2).map(i64::from),
            all_permissions: row.get::<bool>(3).unwrap_or(false),
            permissions: row.get::<Vec<String>>(4).unwrap_or_default().into_iter().collect(),
        })
    })
    .pop()
}
