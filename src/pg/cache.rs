//! The backend-local decision cache (core::cache) and the rules for trusting it, which keep
//! DESIGN.md section 4 exact. See the README section "Decision cache" for the argument.
//!
//! Writers: a statement-level trigger on every table a check reads (sql/cache.sql) calls
//! `authz.note_change()`, which (1) takes a shared advisory lock held to the end of the
//! transaction and (2) queues a relcache invalidation of the table changed. A change of
//! `grants` or `user_roles` flushes the cached facts; a change of the catalog tables also
//! flushes the cached `Catalog`.
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

use super::fresh::{self, value, IndexKey, Statement};
use super::gucs::{CACHE_ENABLED, CACHE_MAX_OVERRIDES};
use super::owner::as_owner;
use super::stats::{self, Counter};
use crate::core::cache::{Cache, Catalog, Facts, MissLog, OnMiss, REPEAT_LOAD_LIMIT};
use crate::core::resolve::{Effect, Override};
use pgrx::prelude::*;
use pgrx::pg_sys::{self, Datum, Oid};
use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::rc::Rc;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new(0));
    static CATALOG: RefCell<Option<Rc<Catalog>>> = const { RefCell::new(None) };
    static MISSES: RefCell<MissLog> = RefCell::new(MissLog::new(10_000));
    /// Bumped by every invalidation; a load that saw it change is not stored.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// The statement (by its start time) of the last trust decision, and the decision;
    /// forgotten at the end of each transaction.
    static TRUST: Cell<Option<(i64, bool)>> = const { Cell::new(None) };
    /// The tables whose changes flush the cache, as found when it was last validated (new
    /// ones after DROP/CREATE EXTENSION): [grants, user_roles, then the catalog tables].
    static TABLES: Cell<[Oid; 7]> = const { Cell::new([pg_sys::InvalidOid; 7]) };
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
    let tables = TABLES.get();
    if relid == pg_sys::InvalidOid || tables[2..].contains(&relid) {
        flush();
    } else if tables[..2].contains(&relid) {
        flush_facts();
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
    flush_facts();
    CATALOG.set(None);
}

fn flush_facts() {
    stats::bump(Counter::Invalidations);
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
        stats::bump(Counter::CacheBypasses);
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
        stats::bump(Counter::CacheHits);
        return hit;
    }
    // A parallel query's leader may use what this statement validated, but not load.
    // SAFETY: a plain read of backend state.
    if unsafe { pg_sys::IsInParallelMode() } {
        stats::bump(Counter::CacheBypasses);
        return None;
    }
    stats::bump(Counter::CacheMisses);
    before_load();
    let use_facts = use_facts.take().expect("not used yet");
    let has_room = CACHE.with(|c| c.borrow().held() + REPEAT_LOAD_LIMIT <= budget);
    let limit = match MISSES.with(|m| m.borrow_mut().on_miss(user, permission, statement_start(), has_room)) {
        OnMiss::PointRead => return Some(use_facts(&read_direct(user, permission, Reach::One(resource)).0)),
        OnMiss::LoadAll { limit } => limit,
    };
    let generation = GENERATION.get();
    let (facts, overrides) = read_direct(user, permission, Reach::All { limit: limit.map(|l| l + 1) });
    if limit.is_some_and(|l| overrides > l) {
        MISSES.with(|m| m.borrow_mut().too_large(user, permission));
        return Some(use_facts(&read_direct(user, permission, Reach::One(resource)).0));
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
    let verdict = no_writer_in_flight() && no_replay_in_flight();
    if verdict {
        // SAFETY: processes queued invalidations, which may flush the cache (that is the point).
        unsafe { pg_sys::AcceptInvalidationMessages() };
        // Only `grants` is looked up per statement: the tables come and go together, with
        // the extension, so a new `grants` means new tables.
        if table_oids([c"grants"])[0] != TABLES.get()[0] {
            TABLES.set(table_oids(TABLE_NAMES));
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

/// On a hot standby, the startup process replays a commit in the same order as a primary
/// commits — visible first, invalidations sent next — but the writers' advisory lock is not
/// replicated. Its stand-in: no WAL record is part-way through replay. Read in this order,
/// "the record being replayed ends at B" then "records up to A are fully replayed" with
/// A >= B mean every commit visible before the first read has sent its invalidations, which
/// the caller processes next.
fn no_replay_in_flight() -> bool {
    // SAFETY: plain reads of recovery state (spinlock-protected inside PostgreSQL).
    unsafe {
        if !pg_sys::RecoveryInProgress() {
            return true;
        }
        let being_replayed = pg_sys::GetCurrentReplayRecPtr(std::ptr::null_mut());
        let replayed = pg_sys::GetXLogReplayRecPtr(std::ptr::null_mut());
        replayed >= being_replayed
    }
}

/// The tables a check reads, in TABLES' order.
const TABLE_NAMES: [&CStr; 7] =
    [c"grants", c"user_roles", c"resource_types", c"permissions", c"roles", c"role_permissions", c"role_permission_removals"];

/// The OIDs of tables of schema authz; InvalidOid for any missing, as while the extension
/// is being dropped.
fn table_oids<const N: usize>(names: [&CStr; N]) -> [Oid; N] {
    // SAFETY: syscache lookups.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"authz".as_ptr(), true);
        names.map(|name| pg_sys::get_relname_relid(name.as_ptr(), schema))
    }
}

/// `authz.note_change(table)`, run by the statement triggers of sql/cache.sql.
#[pg_extern(sql = false)]
fn authz_note_change(table: Oid) {
    let tag = writers_lock();
    // SAFETY: a transaction-level lock (released after the commit's invalidations are
    // sent) and an invalidation queued in this transaction.
    unsafe {
        pg_sys::LockAcquire(&tag, pg_sys::ShareLock as i32, false, false);
        pg_sys::CacheInvalidateRelcacheByRelid(table);
    }
}

static CHECK_FACTS: Statement = Statement {
    sql: c"SELECT known, role, role_allows, grant_id, resource_id, effect, expires_at
           FROM authz.check_facts($1, $2, $3)",
    arg_types: &[pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID],
};

/// Reads from the tables, in one SQL query, what one check needs: the overrides for
/// `resource` and the type level. The path when the cache is off or not trusted.
pub fn load_for_check(user: &str, permission: &str, resource: Option<&str>) -> Facts {
    let args = [user.into_datum(), permission.into_datum(), resource.and_then(|r| r.into_datum())];
    let mut facts = Facts::default();
    as_owner(|| {
        fresh::query(&CHECK_FACTS, &args, |row| {
            facts.known_permission = row.get::<bool>(1).unwrap_or(false);
            facts.role = row.get::<String>(2);
            facts.role_allows = row.get::<bool>(3).unwrap_or(false);
            if let Some(grant_id) = row.get::<i64>(4) {
                facts.add(row.get(5), stored_override(Some(grant_id), row.get(6), row.get(7)));
            }
        })
    });
    facts
}

/// An override as a row of authz.grants stores it.
fn stored_override(grant_id: Option<i64>, effect: Option<String>, expires_at: Option<TimestampWithTimeZone>) -> Override {
    Override {
        grant_id: grant_id.unwrap_or_default(),
        effect: effect.and_then(|e| Effect::parse(&e)).unwrap_or(Effect::Deny),
        expires_at: expires_at.map(i64::from),
    }
}

/// Which overrides `read_direct` reads besides the type level.
enum Reach<'a> {
    /// Those on one resource (None: none).
    One(Option<&'a str>),
    /// All of the user's for the permission, at most `limit`: what the cache holds.
    All { limit: Option<usize> },
}

/// What `load_for_check` reads, for a trusted cache: the catalog side from the cached
/// `Catalog`, the user's role and overrides by direct index reads under one latest
/// snapshot (no SPI: its executor start-up costs several times the reads). Also returns
/// how many overrides it read.
fn read_direct(user: &str, permission: &str, reach: Reach) -> (Facts, usize) {
    let catalog = catalog();
    let mut facts = Facts { known_permission: catalog.knows(permission), ..Facts::default() };
    if !facts.known_permission {
        return (facts, 0);
    }
    let text = |s: &str| IndexKey { equality: pg_sys::F_TEXTEQ, value: s.into_datum().expect("a text datum") };
    let (user_key, permission_key) = (text(user), text(permission));
    let reader = fresh::Reader::new();
    facts.role = reader
        .lookup((c"user_roles", c"user_roles_pkey"), &[user_key], &[c"role"], Some(1), |v| value(v[0]))
        .pop()
        .flatten();
    facts.role_allows = catalog.role_allows(facts.role.as_deref(), permission);
    let keys = [user_key, permission_key];
    facts.type_level = reader.lookup((c"grants", c"grants_type_key"), &keys, &[c"id", c"effect", c"expires_at"], Some(1), |v| {
        stored_override(value(v[0]), value(v[1]), value(v[2]))
    });
    let (keys, limit) = match reach {
        Reach::One(None) => {
            let read = facts.type_level.len();
            return (facts, read);
        }
        Reach::One(Some(resource)) => (&[user_key, permission_key, text(resource)][..], Some(1)),
        Reach::All { limit } => (&keys[..], limit),
    };
    let columns = [c"resource_id", c"id", c"effect", c"expires_at"];
    let resource_level = reader.lookup((c"grants", c"grants_resource_key"), keys, &columns, limit, |v| {
        (value(v[0]), stored_override(value(v[1]), value(v[2]), value(v[3])))
    });
    let read = facts.type_level.len() + resource_level.len();
    for (resource, grant) in resource_level {
        facts.add(resource, grant);
    }
    (facts, read)
}

static CATALOG_FACTS: Statement = Statement {
    sql: c"SELECT p.name, d.role
           FROM authz.permissions p
           LEFT JOIN (SELECT r.name AS role, rd.permission
                      FROM authz.roles r CROSS JOIN LATERAL authz.role_defaults(r.name) rd) d
             ON d.permission OPERATOR(pg_catalog.=) p.name",
    arg_types: &[],
};

/// The cached catalog, read (under the latest snapshot) if missing. Only called while the
/// cache is trusted; flushed with it. Not kept if an invalidation arrived while reading.
fn catalog() -> Rc<Catalog> {
    if let Some(catalog) = CATALOG.with_borrow(|c| c.clone()) {
        return catalog;
    }
    let generation = GENERATION.get();
    let mut catalog = Catalog::default();
    as_owner(|| fresh::query(&CATALOG_FACTS, &[], |row| catalog.add(row.get(1).unwrap_or_default(), row.get(2))));
    let catalog = Rc::new(catalog);
    if GENERATION.get() == generation {
        CATALOG.set(Some(catalog.clone()));
    }
    catalog
}
