//! Whether the decision cache may answer a check, decided at every check (so "the
//! statement" of the freshness promise, docs/guide.md, is any statement: each of a
//! multi-statement message, each inside a function or procedure). docs/ARCHITECTURE.md has
//! the argument.
//!
//! The cache may answer when every commit visible now has had its invalidations processed
//! here. PostgreSQL counts completed transactions in shared memory (the count its own
//! snapshot reuse relies on: it changes whenever what a new snapshot sees may change, on a
//! primary and during replay on a standby). While it stays what it was at this backend's
//! last successful check, nothing new is visible and the check costs one read. When it
//! changed: on a primary, every visible writer must have announced itself and sent its
//! invalidations (writers.rs); on a hot standby, no WAL record may be part-way through
//! replay. Then the invalidation queue is processed, and the new count remembered.

use super::tables;
use super::writers;
use crate::core::ring::{Read, EVERYONE};
use crate::pg::gucs::cache_enabled;
use crate::pg::local::Local;
use pgrx::pg_sys;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// The count of completed transactions at the last check that found everything visible
/// announced and processed.
static QUIET_AT: Local<Cell<u64>> = Local::new(Cell::new(u64::MAX));

thread_local! {
    /// The next entry of the ring of changed users to read (None: start at its head).
    static RING_NEXT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Whether the server was in recovery at the last look.
    static IN_RECOVERY: Cell<bool> = const { Cell::new(false) };
}

/// Whether this check may use the cache.
pub fn cache_usable() -> bool {
    // A parallel worker has a cache of its own that it cannot fill exactly (checks are
    // PARALLEL RESTRICTED, so this is a safeguard).
    // SAFETY: a plain read of backend state.
    if !cache_enabled() || !writers::available() || unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
        return false;
    }
    let completions = completed_transactions();
    if completions != QUIET_AT.get() {
        // SAFETY: a plain read of recovery state.
        let in_recovery = unsafe { pg_sys::RecoveryInProgress() };
        let quiet = match in_recovery {
            true => no_replay_in_flight(),
            false => writers::all_visible_commits_announced() && changed_users_read(),
        };
        if !quiet {
            return false;
        }
        // SAFETY: processes queued invalidations; the callbacks only bump counters.
        unsafe { pg_sys::AcceptInvalidationMessages() };
        // After a promotion: what replay invalidated may have been taken for the ring's.
        if IN_RECOVERY.replace(in_recovery) && !in_recovery {
            super::stale_users(vec![EVERYONE]);
        }
        QUIET_AT.set(completions);
    }
    tables::all_writes_invalidate(completions)
}

/// Whether the cache may answer without looking at anything: nothing completed since the
/// last check that looked and found everything sound. Plain reads of memory only (nothing
/// here can raise an error); false means ask `cache_usable`.
pub fn nothing_new() -> bool {
    // SAFETY: as in cache_usable.
    cache_enabled()
        && writers::available()
        && unsafe { pg_sys::ParallelWorkerNumber } < 0
        && completed_transactions() == QUIET_AT.get()
        && tables::known_sound()
}

/// Reads the users that commits since the last look changed (core::ring) and notes them
/// stale; false if a writer is still naming its users.
fn changed_users_read() -> bool {
    let Some(ring) = writers::ring() else {
        return false;
    };
    let mut next = RING_NEXT.get().unwrap_or_else(|| ring.head());
    let read = ring.read(&mut next);
    RING_NEXT.set(Some(next));
    match read {
        Read::NotYet => false,
        Read::Users(users) => {
            super::stale_users(users);
            true
        }
    }
}

/// Whether changes to users' facts reach this backend through the ring (on a primary that
/// preloaded the library), not as relcache invalidations of the whole tables.
pub fn users_named_by_ring() -> bool {
    // SAFETY: a plain read of recovery state.
    writers::ring().is_some() && !unsafe { pg_sys::RecoveryInProgress() }
}

/// PostgreSQL's count of completed transactions with an id, incremented (under
/// ProcArrayLock) as each becomes visible, also by replay on a standby.
fn completed_transactions() -> u64 {
    // SAFETY: the field lives in shared memory for the server's life; it is 8-byte aligned
    // and only ever incremented, so an atomic read sees a value it had.
    unsafe {
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16"))]
        let count = &raw const (*pg_sys::ShmemVariableCache).xactCompletionCount;
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let count = &raw const (*pg_sys::TransamVariables).xactCompletionCount;
        (*count.cast::<AtomicU64>()).load(SeqCst)
    }
}

/// On a hot standby, the startup process replays a commit in the same order as a primary
/// commits — visible first, invalidations sent next — but no writer announces it. Its
/// stand-in: no WAL record is part-way through replay. Read in this order, "the record being
/// replayed ends at B" then "records up to A are fully replayed" with A >= B mean every
/// commit visible before the first read has sent its invalidations, which the caller
/// processes next.
fn no_replay_in_flight() -> bool {
    // SAFETY: plain reads of recovery state (spinlock-protected inside PostgreSQL).
    unsafe {
        let being_replayed = pg_sys::GetCurrentReplayRecPtr(std::ptr::null_mut());
        let replayed = pg_sys::GetXLogReplayRecPtr(std::ptr::null_mut());
        replayed >= being_replayed
    }
}
