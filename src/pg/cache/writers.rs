//! The writers' side of the trust protocol (docs/ARCHITECTURE.md, "Why the cache is never stale").
//!
//! A statement that changes a table a check reads fires the extension's `note_change`
//! trigger, which queues a relcache invalidation of that table for every backend and marks
//! the transaction. PostgreSQL makes a commit visible *before* it sends its invalidations,
//! so a marked transaction announces itself before it becomes visible: at PRE_COMMIT (or
//! PRE_PREPARE) it enters its transaction id in a registry in shared memory, and it leaves
//! it once its invalidations are sent (at the release of its resources). A reader that
//! finds a registered transaction which is no longer in progress but has not finished (its
//! transaction lock is still held) knows that a visible commit has not sent its
//! invalidations yet, and does not trust its cache for that check.
//!
//! A prepared transaction stays registered after PREPARE; any session may COMMIT PREPARED
//! it, without running any code of ours, so readers remove it once they see it finished.
//! Prepared transactions that survive a restart were registered in the registry that died
//! with it: they also hold an advisory lock (kept in their two-phase state across the
//! restart), and readers trust nothing until that lock has once been free.
//!
//! Writers also name the users whose facts they changed: the row trigger notes each
//! changed row's `user_id` (tables of kind `facts`), and at XACT_EVENT_COMMIT — visible,
//! its locks not yet released — the transaction appends them to a ring in shared memory
//! (core::ring), which readers read where they process invalidations, so that a commit
//! drops only those users' cached entries.
//!
//! The registry and the ring need `shared_preload_libraries = 'authz_ext'`; without it the
//! cache is never trusted (checks read the tables).

use pgrx::pg_sys::{self, Oid, TransactionId};
use pgrx::prelude::*;
use super::tables::Kind;
use crate::core::ring::{Ring, EVERYONE};
use crate::core::cache::user_key;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

#[repr(C)]
struct Registry {
    /// 1 once no prepared transaction from before the last start can be unregistered.
    seeded: AtomicU32,
    /// Slots in use (may briefly count one being claimed or freed).
    used: AtomicU32,
    len: u32,
    /// `len` registrations (0 for a free slot): a transaction id, and PREPARED if it was
    /// registered by a PREPARE.
    slots: [AtomicU64; 0],
}

/// The flag of a registration made by PREPARE TRANSACTION.
const PREPARED: u64 = 1 << 32;

impl Registry {
    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: the shared memory allocated for the registry has `len` slots after it.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.len as usize) }
    }

    /// Frees `slot` if it still holds `registration` (whoever gets there first).
    fn free(&self, slot: &AtomicU64, registration: u64) {
        if slot.compare_exchange(registration, 0, SeqCst, SeqCst).is_ok() {
            self.used.fetch_sub(1, SeqCst);
        }
    }
}

/// Set by the postmaster's shared-memory start-up, inherited by every backend it forks.
static mut REGISTRY: *const Registry = std::ptr::null();
static mut RING: *const Ring = std::ptr::null();

/// Users a transaction may name in the ring; past it, it names everyone.
const MAX_USERS: usize = 256;

thread_local! {
    /// This transaction changed a table a check reads.
    static CHANGED: Cell<bool> = const { Cell::new(false) };
    /// This transaction changed (or may have changed) API keys: wrote a table of kind
    /// `keys` or `catalog`, or did DDL on one (shared_keys.rs).
    static KEYS_CHANGED: Cell<bool> = const { Cell::new(false) };
    /// The user keys whose facts this transaction changed (EVERYONE: too many to name, or
    /// a TRUNCATE).
    static CHANGED_USERS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// This backend's registration: slot and value.
    static REGISTERED: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

fn registry() -> Option<&'static Registry> {
    // SAFETY: written once, before any backend exists; then only read.
    unsafe { REGISTRY.as_ref() }
}

/// The ring of changed users (core::ring), with the registry.
pub fn ring() -> Option<&'static Ring> {
    // SAFETY: as REGISTRY.
    unsafe { RING.as_ref() }
}

/// Whether this server preloaded the library, so that the cache may be trusted at all.
pub fn available() -> bool {
    registry().is_some()
}

/// One slot per backend that may be committing, and one per prepared transaction.
fn slot_count() -> u32 {
    // SAFETY: read after the server's settings are final (shmem_request_hook and later).
    let backends = unsafe { pg_sys::MaxBackends };
    // SAFETY: a registered setting; returns a static string.
    let prepared = unsafe { std::ffi::CStr::from_ptr(pg_sys::GetConfigOption(c"max_prepared_transactions".as_ptr(), false, false)) };
    let prepared: i32 = prepared.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    (backends + prepared).max(1) as u32
}

fn registry_size() -> usize {
    std::mem::size_of::<Registry>() + slot_count() as usize * std::mem::size_of::<AtomicU64>()
}

static mut PREV_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// Asks for the registry's shared memory (and the shared keys', shared_keys.rs) and
/// registers the callbacks of writers; called from `_PG_init`. Shared memory can only be
/// had while the server preloads the library.
pub fn register() {
    // SAFETY: hook chaining and callback registration, once per process, at library load.
    unsafe {
        if pg_sys::process_shared_preload_libraries_in_progress {
            PREV_SHMEM_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(request_shared_memory);
            PREV_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(create_registry);
        }
        pg_sys::RegisterXactCallback(Some(on_transaction_event), std::ptr::null_mut());
        pg_sys::RegisterResourceReleaseCallback(Some(on_resource_release), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn request_shared_memory() {
    // SAFETY: the previous hook, if any, and PostgreSQL's request function.
    unsafe {
        if let Some(previous) = PREV_SHMEM_REQUEST {
            previous();
        }
        pg_sys::RequestAddinShmemSpace(registry_size());
        pg_sys::RequestAddinShmemSpace(Ring::size());
        pg_sys::RequestAddinShmemSpace(super::shared_keys::shared_memory_size());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn create_registry() {
    // SAFETY: the previous hook, then ShmemInitStruct under AddinShmemInitLock, as
    // PostgreSQL's own modules do; the memory is zeroed before anyone can see it.
    unsafe {
        if let Some(previous) = PREV_SHMEM_STARTUP {
            previous();
        }
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let size = registry_size();
        let registry = pg_sys::ShmemInitStruct(c"authz_ext writers".as_ptr(), size, &mut found).cast::<Registry>();
        if !found {
            std::ptr::write_bytes(registry.cast::<u8>(), 0, size);
            (*registry).len = slot_count();
        }
        REGISTRY = registry;
        let ring = pg_sys::ShmemInitStruct(c"authz_ext changed users".as_ptr(), Ring::size(), &mut found).cast::<Ring>();
        if !found {
            std::ptr::write_bytes(ring.cast::<u8>(), 0, Ring::size());
        }
        RING = ring;
        super::shared_keys::create_in_shared_memory();
        pg_sys::LWLockRelease(lock);
    }
}

/// `authz.note_change()`: the trigger of sql/cache.sql on every table a check reads. On
/// the tables of kind `facts` (whose rows name a user_id), it also notes which users
/// changed, for the ring.
#[pg_trigger(sql = false)]
fn authz_note_change<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    CHANGED.set(true);
    if !matches!(Kind::of(trigger.trigger()), Some(Kind::Facts | Kind::Relations)) {
        KEYS_CHANGED.set(true);
    }
    // The statement trigger queues the relcache invalidation (one per statement); a row
    // trigger only where statement triggers do not fire: logical replication's apply,
    // which runs in replica mode.
    let row = matches!(trigger.level(), pgrx::PgTriggerLevel::Row);
    // SAFETY: a plain read of a setting's variable.
    let replica = unsafe { pg_sys::SessionReplicationRole } == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32;
    if !row || replica {
        // Of the kind's signal table, not of this one: plans reading it stay valid.
        let table = trigger.relid()?;
        let signal = Kind::of(trigger.trigger()).and_then(|kind| super::tables::signal_of(kind, trigger.trigger().tgfoid));
        // SAFETY: queues an invalidation of an existing relation, sent when this commits.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(signal.unwrap_or(table)) };
    }
    if Kind::of(trigger.trigger()) == Some(Kind::Facts) {
        let event = trigger.trigger_data().tg_event;
        if event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_TRUNCATE {
            note_user(EVERYONE);
        }
        let everyone = CHANGED_USERS.with_borrow(|users| users.first() == Some(&EVERYONE));
        for row in [trigger.old(), trigger.new()].into_iter().flatten().filter(|_| !everyone) {
            match row.get_by_name::<&str>("user_id") {
                Ok(Some(user)) => note_user(user_key(user)),
                Ok(None) => {}
                Err(_) => note_user(EVERYONE),
            }
        }
    }
    Ok(None)
}

/// Whether this transaction has changed API keys (or may have): the keys shared by every
/// backend are then neither read nor filled by it (shared_keys.rs).
pub fn this_transaction_changed_keys() -> bool {
    KEYS_CHANGED.get()
}

/// Notes an invalidation of `relid`, a table of kind `keys` or `catalog`, or any table
/// while this backend does not know which are which: if this transaction holds it locked
/// as DDL does (disabling a trigger, dropping, truncating), the invalidation is its own and
/// it may have changed API keys with no note_change trigger firing.
pub fn note_invalidation(relid: Oid) {
    // SAFETY: plain reads of transaction state and of this backend's own lock table.
    let ddl = unsafe {
        pg_sys::IsTransactionState() && pg_sys::CheckRelationOidLockedByMe(relid, pg_sys::ShareRowExclusiveLock as i32, true)
    };
    if ddl {
        KEYS_CHANGED.set(true);
    }
}

/// Whether this transaction has changed users' facts: then its own relcache
/// invalidations (processed here as it goes, and when it or a savepoint rolls back) must
/// flush this backend's cache, the ring only names them to the others once committed.
pub fn this_transaction_changed_users() -> bool {
    CHANGED_USERS.with_borrow(|users| !users.is_empty())
}

fn note_user(key: u64) {
    CHANGED_USERS.with_borrow_mut(|users| {
        if users.first() == Some(&EVERYONE) || users.contains(&key) {
            return;
        }
        if key == EVERYONE || users.len() >= MAX_USERS {
            *users = vec![EVERYONE];
        } else {
            users.push(key);
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_event(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT if CHANGED.get() || KEYS_CHANGED.get() => announce(false),
        XACT_EVENT_PRE_PREPARE if CHANGED.get() || KEYS_CHANGED.get() => announce(true),
        XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE => {
            let users = CHANGED_USERS.take();
            // What this backend cached while the transaction was writing may hold its
            // undone changes (its invalidations are processed here after this callback).
            if event == XACT_EVENT_ABORT && !users.is_empty() {
                super::stale_users(vec![EVERYONE]);
            }
            // Visible now, locks not released yet: name the changed users (core::ring). A
            // prepared transaction's are named by whoever sees it finish (sweep).
            if let (XACT_EVENT_COMMIT, Some((_, registration)), Some(ring)) = (event, REGISTERED.get(), ring()) {
                if registration & PREPARED == 0 {
                    ring.append(users);
                }
            }
            // Visible now, and readers trust nothing until this transaction finishes.
            if event == XACT_EVENT_COMMIT && KEYS_CHANGED.get() {
                super::shared_keys::committed();
            }
            CHANGED.set(false);
            KEYS_CHANGED.set(false);
        }
        _ => {}
    }
}

/// Called for every resource owner released; the registration ends once, after the
/// transaction's invalidations were sent (they precede the release of its locks).
#[pg_guard]
unsafe extern "C-unwind" fn on_resource_release(
    phase: pg_sys::ResourceReleasePhase::Type,
    is_commit: bool,
    is_top_level: bool,
    _arg: *mut c_void,
) {
    if phase != pg_sys::ResourceReleasePhase::RESOURCE_RELEASE_AFTER_LOCKS || !is_top_level {
        return;
    }
    if let Some((slot, registration)) = REGISTERED.take() {
        // A prepared transaction stays registered until readers see it finished.
        if !(registration & PREPARED != 0 && is_commit) {
            if let Some(registry) = registry() {
                registry.free(&registry.slots()[slot], registration);
            }
        }
    }
}

/// Enters this transaction in the registry, before it can become visible.
fn announce(prepare: bool) {
    let Some(registry) = registry() else {
        return;
    };
    // SAFETY: plain reads of transaction state.
    let xid = unsafe { pg_sys::GetTopTransactionIdIfAny() };
    if xid == TransactionId::INVALID {
        return; // nothing was written after all: nothing can become visible
    }
    if prepare {
        // SAFETY: a transaction-level lock; PREPARE keeps it in the two-phase state.
        unsafe { pg_sys::LockAcquire(&prepared_writers_lock(), pg_sys::ShareLock as i32, false, false) };
    }
    let registration = u64::from(xid.into_inner()) | if prepare { PREPARED } else { 0 };
    registry.used.fetch_add(1, SeqCst);
    for attempt in 0..2 {
        if attempt == 1 {
            sweep(registry);
        }
        for (i, slot) in registry.slots().iter().enumerate() {
            if slot.compare_exchange(0, registration, SeqCst, SeqCst).is_ok() {
                REGISTERED.set(Some((i, registration)));
                return;
            }
        }
    }
    registry.used.fetch_sub(1, SeqCst);
    // Cannot happen with one slot per backend and per prepared transaction; never commit
    // unannounced.
    pgrx::error!("authz_ext: no free slot to announce this commit to the decision caches");
}

/// Whether every transaction that changed authorization data and is visible now has sent
/// its invalidations. Frees the slots of transactions seen finished.
pub fn all_visible_commits_announced() -> bool {
    let Some(registry) = registry() else {
        return false;
    };
    if !seeded(registry) {
        return false;
    }
    registry.used.load(SeqCst) == 0 || sweep(registry)
}

/// Frees the slots of registered transactions seen finished; whether none is visible
/// without having sent its invalidations and named its users (one still in progress, this
/// one included, is not visible yet). A prepared transaction's users are not known here:
/// its end names everyone.
fn sweep(registry: &Registry) -> bool {
    let mut all_sent = true;
    for slot in registry.slots() {
        let registration = slot.load(SeqCst);
        let xid = TransactionId::from_inner(registration as u32);
        if xid == TransactionId::INVALID || in_progress(xid) {
            continue;
        }
        if finished(xid) {
            if registration & PREPARED != 0 {
                if let Some(ring) = ring() {
                    ring.append([EVERYONE]);
                }
                super::shared_keys::prepared_finished();
            }
            registry.free(slot, registration);
        } else {
            all_sent = false; // visible, invalidations maybe not sent
        }
    }
    all_sent
}

fn in_progress(xid: TransactionId) -> bool {
    // SAFETY: reads the proc array under its lock.
    unsafe { pg_sys::TransactionIdIsInProgress(xid) }
}

/// Whether the transaction has released its locks, which it does after sending its
/// invalidations (also for COMMIT PREPARED).
fn finished(xid: TransactionId) -> bool {
    let tag = pg_sys::LOCKTAG {
        locktag_field1: xid.into_inner(),
        locktag_field2: 0,
        locktag_field3: 0,
        locktag_field4: 0,
        locktag_type: pg_sys::LockTagType::LOCKTAG_TRANSACTION as u8,
        locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
    };
    lock_is_free(&tag, pg_sys::ShareLock)
}

/// Held in share mode by every prepared transaction that changed authorization data.
fn prepared_writers_lock() -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        locktag_field1: Oid::INVALID.to_u32(), // every database: the registry is the server's
        locktag_field2: 0x617a_7468,           // "azth"
        locktag_field3: 0x7072_6570,           // "prep"
        // pg_advisory_lock uses 1 and 2 here, so ours never collides with an application's.
        locktag_field4: 0x7a61,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

/// After a start, trusts nothing while a prepared transaction from before it may have
/// changed authorization data (it holds the prepared writers' lock, and is not registered).
fn seeded(registry: &Registry) -> bool {
    if registry.seeded.load(SeqCst) == 1 {
        return true;
    }
    if !lock_is_free(&prepared_writers_lock(), pg_sys::ExclusiveLock) {
        return false;
    }
    registry.seeded.store(1, SeqCst);
    true
}

fn lock_is_free(tag: &pg_sys::LOCKTAG, mode: u32) -> bool {
    // SAFETY: a conditional lock, released at once.
    unsafe {
        if pg_sys::LockAcquire(tag, mode as i32, false, true) == pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL {
            return false;
        }
        pg_sys::LockRelease(tag, mode as i32, false);
    }
    true
}
