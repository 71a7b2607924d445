//! The API keys validated on this server, kept in shared memory (core::slots) so that a
//! key is read from the tables once for every connection, not once by each: the second
//! level under each backend's memo of keys (keys.rs). authz.shared_key_memory sizes it;
//! it needs `shared_preload_libraries = 'authz_ext'`.
//!
//! Why a value found here is never stale (docs/ARCHITECTURE.md has the whole argument): a
//! value is stamped with its database's generation as read *before* the tables were, and
//! is used only at that generation. Every transaction that can make a value stale bumps
//! the generation at its commit, once visible and before the trust protocol lets any
//! reader trust its cache again (it is announced in the writers' registry like any writer,
//! writers.rs): one that changed a table of kind `keys` or `catalog` (its note_change
//! trigger fired), or did DDL on one (disabled its triggers, dropped or truncated it:
//! writes then need no trigger). A prepared one is bumped for by whoever sees it finish.
//! Nothing is read or stored here by a transaction that changed keys (its own changes are
//! not everyone's), or on a hot standby (no commit there runs our code).

use super::super::gucs::SHARED_KEY_MEMORY_KB;
use super::super::stats::{self, Counter};
use crate::core::slots::{Slots, MAX_VALUE};
use pgrx::pg_sys;

/// Set by the postmaster's shared-memory start-up, inherited by every backend it forks.
static mut SLOTS: *const Slots = std::ptr::null();

/// The table's size and buckets for authz.shared_key_memory.
fn sized() -> (usize, u64) {
    Slots::sized(usize::try_from(SHARED_KEY_MEMORY_KB.get()).unwrap_or(0) * 1024)
}

/// The shared memory to ask for (writers.rs asks for all the cache's, while preloading).
pub fn shared_memory_size() -> usize {
    sized().0
}

/// Sets up the table in the shared memory asked for.
///
/// # Safety
/// At the server's shared-memory start-up, holding AddinShmemInitLock (writers.rs).
pub unsafe fn create_in_shared_memory() {
    let (size, buckets) = sized();
    let mut found = false;
    // SAFETY: the caller's promise; the memory is zeroed before anyone can see it.
    unsafe {
        let memory = pg_sys::ShmemInitStruct(c"authz_ext api keys".as_ptr(), size, &mut found).cast::<u8>();
        if !found {
            std::ptr::write_bytes(memory, 0, size);
        }
        SLOTS = Slots::init(memory, buckets);
    }
}

fn slots() -> Option<&'static Slots> {
    // SAFETY: written once, before any backend exists; then only read.
    unsafe { SLOTS.as_ref() }
}

/// At the commit of a transaction that changed keys (visible, not yet finished).
pub fn committed() {
    if let Some(slots) = slots() {
        // SAFETY: a plain read of backend state.
        slots.bump(Some(unsafe { pg_sys::MyDatabaseId }.to_u32()));
    }
}

/// A prepared transaction (of any database) that may have changed keys has finished.
pub fn prepared_finished() {
    if let Some(slots) = slots() {
        slots.bump(None);
    }
}

/// One lookup: the generation as read before the tables are.
pub struct Lookup {
    slots: &'static Slots,
    database: u32,
    stamp: u64,
}

/// A lookup, where values may be shared: the memory exists, this is no hot standby, and
/// this transaction changed no keys. The caller trusts its cache (trust.rs) for this call.
pub fn lookup() -> Option<Lookup> {
    let slots = slots()?;
    // SAFETY: plain reads of backend and recovery state.
    let (database, in_recovery) = unsafe { (pg_sys::MyDatabaseId.to_u32(), pg_sys::RecoveryInProgress()) };
    if in_recovery || super::writers::this_transaction_changed_keys() {
        return None;
    }
    Some(Lookup { slots, database, stamp: slots.generation(database) })
}

/// A value kept in shared memory: bytes, and a hint that only grows (core::slots).
pub trait Shared: Sized {
    fn encode(&self) -> (Vec<u8>, u64);
    /// None: not a value `encode` wrote.
    fn decode(bytes: &[u8], hint: u64) -> Option<Self>;
}

impl Lookup {
    /// The value kept for `hash`, else what `load` reads (then kept for the others, if it
    /// fits).
    pub fn remembered<V: Shared>(&self, hash: &[u8; 32], load: impl FnOnce() -> V) -> V {
        let mut buffer = [0u8; MAX_VALUE];
        if let Some(found) = self.slots.get(self.database, hash, &mut buffer).and_then(|(len, hint)| V::decode(&buffer[..len], hint)) {
            stats::bump(Counter::KeySharedHits);
            return found;
        }
        let value = load();
        let (bytes, hint) = value.encode();
        self.slots.put(self.database, hash, self.stamp, &bytes, hint);
        value
    }
}

/// Raises the hint kept with `hash` in this database, if it is kept (a key's last use).
pub fn raise_hint(hash: &[u8; 32], hint: u64) {
    if let Some(slots) = slots() {
        // SAFETY: a plain read of backend state.
        slots.raise(unsafe { pg_sys::MyDatabaseId }.to_u32(), hash, hint);
    }
}
