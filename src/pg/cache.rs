//! The backend-local decision cache (core::cache) and the rules for trusting it, which keep
//! DESIGN.md section 4 exact. See the README section "Decision cache" for the argument.
//!
//! Writers: a statement-level trigger on every table a check reads (sql/cache.sql) calls
//! `authz.note_change()`, which (1) takes a shared advisory lock held to the end of the
//! transaction and (2) queues a relcache invalidation of `authz.grants` (the sentinel).
//! PostgreSQL sends a committing transaction's invalidations after the commit is visible
//! and before its locks are released, so while the lock is held a reader cannot tell from
//! its invalidation queue whether the commit is visible yet.
//!
//! Readers, once per statement: try the advisory lock in a conflicting mode without waiting.
//! If it is taken, no writer is between "visible" and "invalidations sent": release it,
//! process the invalidation queue (which flushes the cache if anything changed), and trust
//! the cache for this statement. If not, bypass the cache for this statement. A missing
//! entry is loaded under a snapshot taken after that point (never an older one), and is
//! not stored if an invalidation arrived while loading. The session's own changes and
//! rollbacks (savepoints too) flush it through the same invalidations, processed locally.

use super::fresh::{self, Statement};
use super::gucs::{CACHE_ENABLED, CACHE_MAX_OVERRIDES};
use super::owner::as_owner;
use crate::core::cache::{Cache, Facts, MissLog, OnMiss};
use crate::core::resolve::{Effect, Override};
use pgrx::prelude::*;
use pgrx::pg_sys::{self, Datum, Oid};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new(0));
    static MISSES: RefCell<MissLog> = RefCell::new(MissLog::new(10_000));
    /// Bumped by every invalidation; a load that saw it change is not stored.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// The statement (by its start time) of the last trust decision, and the decision;
    /// forgotten at the end of each transaction.
    static TRUST: Cell<Option<(i64, bool)>> = const { Cell::new(None) };
    /// The sentinel relation the cache was filled under (a new one after DROP/CREATE EXTENSION).
    static SENTINEL: Cell<Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

/// Registers the invalidation and transaction callbacks; called once, at library load.
pub fn register_callbacks() {
    // SAFETY: plain registrations of functions that live as long as the library.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), Datum::from(0));
        pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: Datum, relid: Oid) {
    if relid == pg_sys::InvalidOid || relid == SENTINEL.get() {
        flush();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE) {
        TRUST.set(None);
    }
}

fn flush() {
    GENERATION.set(GENERATION.get() + 1);
    CACHE.with(|c| c.borrow_mut().clear());
}

/// Runs `use_facts` on the facts for (user, permission) — cached, or read as core::cache's
/// MissLog decides (after `before_load`, which may raise) — ; None when the cache is off
/// or may not be trusted in this statement.
pub fn with_facts<R>(
    user: &str,
    permission: &str,
    resource: Option<&str>,
    before_load: impl FnOnce(),
    use_facts: impl FnOnce(&Facts) -> R,
) -> Option<R> {
    if !trusted_in_this_statement() {
        return None;
    }
    let budget = usize::try_from(CACHE_MAX_OVERRIDES.get()).unwrap_or(0);
    let mut use_facts = Some(use_facts);
    let hit = CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        cache.set_budget(budget);
        let facts = cache.get(user, permission)?;
        Some(use_facts.take().expect("not used yet")(facts))
    });
    if hit.is_some() {
        return hit;
    }
    // A parallel query's leader may use what this statement validated, but not load.
    // SAFETY: a plain read of backend state.
    if unsafe { pg_sys::IsInParallelMode() } {
        return None;
    }
    before_load();
    let use_facts = use_facts.take().expect("not used yet");
    let limit = match MISSES.with(|m| m.borrow_mut().on_miss(user, permission, statement_start())) {
        OnMiss::PointRead => return Some(use_facts(&load_for_check(user, permission, resource))),
        OnMiss::LoadAll { limit } => limit,
    };
    let generation = GENERATION.get();
    let (facts, overrides) = load_all(user, permission, limit);
    if limit.is_some_and(|l| overrides > l) {
        MISSES.with(|m| m.borrow_mut().too_large(user, permission));
        return Some(use_facts(&load_for_check(user, permission, resource)));
    }
    let answer = use_facts(&facts);
    if GENERATION.get() == generation {
        CACHE.with(|c| c.borrow_mut().insert(user, permission, facts));
    }
    Some(answer)
}

/// The current statement's start time: what expiry is compared with.
pub fn statement_start() -> i64 {
    // SAFETY: always valid inside a statement.
    unsafe { pg_sys::GetCurrentStatementStartTimestamp() }
}

fn trusted_in_this_statement() -> bool {
    if !CACHE_ENABLED.get() {
        return false;
    }
    let statement = statement_start();
    if let Some((seen, verdict)) = TRUST.get() {
        if seen == statement {
            return verdict;
        }
    }
    // A parallel worker has its own (empty) cache and cannot load it; checks are PARALLEL
    // RESTRICTED, so this is a safeguard.
    // SAFETY: a plain read of backend state.
    if unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
        return false;
    }
    let verdict = no_writer_in_flight();
    if verdict {
        // SAFETY: processes queued invalidations, which may flush the cache (that is the point).
        unsafe { pg_sys::AcceptInvalidationMessages() };
        let sentinel = sentinel_oid();
        if sentinel != SENTINEL.get() {
            SENTINEL.set(sentinel);
            flush();
        }
    }
    TRUST.set(Some((statement, verdict)));
    verdict
}

/// The advisory lock that writers hold in share mode until their transaction has ended.
fn writers_lock() -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        // SAFETY: set for the whole life of a backend connected to a database.
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: 0x617a_7468, // "azth"
        locktag_field3: 0x6361_6368, // "cach"
        // pg_advisory_lock uses 1 and 2 here, so ours never collides with an application's.
        locktag_field4: 0x7a61,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

fn no_writer_in_flight() -> bool {
    let tag = writers_lock();
    let mode = pg_sys::ExclusiveLock as i32;
    // SAFETY: a conditional transaction-level lock, released at once.
    unsafe {
        let got = pg_sys::LockAcquire(&tag, mode, false, true);
        if got == pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL {
            return false;
        }
        pg_sys::LockRelease(&tag, mode, false);
    }
    true
}

fn sentinel_oid() -> Oid {
    // SAFETY: syscache lookups; InvalidOid if the extension is being dropped.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"authz".as_ptr(), true);
        pg_sys::get_relname_relid(c"grants".as_ptr(), schema)
    }
}

/// `authz.note_change()`, run by the statement triggers of sql/cache.sql.
#[pg_extern(sql = false)]
fn authz_note_change() {
    let tag = writers_lock();
    // SAFETY: a transaction-level lock (released after the commit's invalidations are
    // sent) and an invalidation queued in this transaction.
    unsafe {
        pg_sys::LockAcquire(&tag, pg_sys::ShareLock as i32, false, false);
        pg_sys::CacheInvalidateRelcacheByRelid(sentinel_oid());
    }
}

static CHECK_FACTS: Statement = Statement {
    sql: c"SELECT known, role, role_allows, grant_id, resource_id, effect, expires_at
           FROM authz.check_facts($1, $2, $3) LIMIT $4",
    arg_types: &[pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::INT8OID],
};

/// Reads from the tables what one check needs: the overrides for `resource` and the type
/// level (with no resource, for every resource). The uncached path.
pub fn load_for_check(user: &str, permission: &str, resource: Option<&str>) -> Facts {
    read_facts(user, permission, resource, None).0
}

/// Reads every override of the user for the permission (what the cache holds), at most
/// `limit` + 1 of them; also returns how many it read.
fn load_all(user: &str, permission: &str, limit: Option<usize>) -> (Facts, usize) {
    read_facts(user, permission, None, limit.map(|l| l + 1))
}

fn read_facts(user: &str, permission: &str, resource: Option<&str>, rows: Option<usize>) -> (Facts, usize) {
    let args = [
        user.into_datum(),
        permission.into_datum(),
        resource.and_then(|r| r.into_datum()),
        rows.and_then(|n| i64::try_from(n).ok()).into_datum(),
    ];
    let mut facts = Facts::default();
    let read = as_owner(|| {
        fresh::query(&CHECK_FACTS, &args, |row| {
            facts.known_permission = row.get::<bool>(1).unwrap_or(false);
            facts.role = row.get::<String>(2);
            facts.role_allows = row.get::<bool>(3).unwrap_or(false);
            if let Some(grant_id) = row.get::<i64>(4) {
                let grant = Override {
                    grant_id,
                    effect: row.get::<String>(6).and_then(|e| Effect::parse(&e)).unwrap_or(Effect::Deny),
                    expires_at: row.get::<TimestampWithTimeZone>(7).map(i64::from),
                };
                match row.get::<String>(5) {
                    Some(resource) => facts.resource_level.entry(resource).or_default().push(grant),
                    None => facts.type_level.push(grant),
                }
            }
        })
        .len()
    });
    (facts, read)
}
