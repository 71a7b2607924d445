//! The API keys' side of the decision cache: what validation reads about a key (by its
//! token's hash) and what a key principal's checks read (liveness and whether a scope
//! covers a permission). Kept under the same trust protocol as the users' facts, and
//! dropped whenever a table of kind `keys` changes (api_keys, scopes, scope_permissions).
//! Expiry is not cached: it is compared with the clock at every use. Each of the two memos
//! holds up to an eighth of authz.cache_memory (memo.rs): an API server's connections see
//! every active key, and a validated key takes about 210 bytes, so the default 16 MB holds
//! about 9,000. While the keys are shared (shared_keys.rs), a full memo of validated keys
//! keeps what it has rather than emptying itself (memo::WhenFull).

use super::memo::{remembered, Footprint, Memo, Source, WhenFull};
use super::shared_keys;
use super::tables::{self, Epochs, Kind};
use super::trust;
use std::cell::RefCell;
use std::rc::Rc;

/// What a key principal's checks need about the key.
#[derive(Debug, Default)]
pub struct KeyGrant {
    pub revoked: bool,
    pub expires_at: Option<i64>,
    /// One of the key's scopes covers every permission.
    pub all_permissions: bool,
    /// The permissions its scopes cover.
    pub permissions: rustc_hash::FxHashSet<String>,
}

impl Footprint for KeyGrant {
    fn bytes(&self) -> usize {
        self.permissions.capacity() * 32 + self.permissions.iter().map(String::len).sum::<usize>()
    }
}

impl KeyGrant {
    pub fn covers(&self, permission: &str) -> bool {
        self.all_permissions || self.permissions.contains(permission)
    }
}

thread_local! {
    static BY_HASH: RefCell<Memo<[u8; 32], Option<Rc<crate::pg::keys::StoredKey>>>> = RefCell::new(Memo::new());
    static GRANTS: RefCell<Memo<[u8; 16], Option<Rc<KeyGrant>>>> = RefCell::new(Memo::new());
}

/// The memos are current while no `keys` table has changed.
const KEYS: Source = Source { kind: Kind::Keys, epoch: |epochs: Epochs| epochs.keys };

/// Whether what `key_grant` returned at `generation` may still be used for this check.
pub fn key_grant_current(generation: u64) -> bool {
    trust::cache_usable() && tables::epochs().keys == generation
}

/// `key_grant_current`, if that needs no look at anything (trust::nothing_new); false:
/// ask `key_grant_current`. Raises nothing.
pub fn key_grant_current_without_looking(generation: u64) -> bool {
    trust::nothing_new() && tables::epochs().keys == generation
}

/// The key a token hash names (None: no such key), as `load` reads it: remembered by this
/// backend, or shared by every backend (shared_keys.rs).
pub fn key_by_hash(
    hash: [u8; 32],
    load: impl FnOnce() -> Option<Rc<crate::pg::keys::StoredKey>>,
) -> Option<Rc<crate::pg::keys::StoredKey>> {
    // (The generation is read before the tables are, as shared_keys asks, and before the
    // memo: a full memo then keeps what it has, the shared keys answering the rest.)
    let shared = shared_keys::lookup();
    let when_full = if shared.is_some() { WhenFull::Keep } else { WhenFull::Empty };
    let shared_or_load = |trusted: bool| match shared.filter(|_| trusted) {
        Some(shared) => shared.remembered(&hash, load),
        None => load(),
    };
    remembered(&BY_HASH, &KEYS, hash, |_| true, when_full, shared_or_load).0
}

/// This backend wrote the key's `last_used_at` (PostgreSQL microseconds): what the other
/// backends read from shared memory says so too, and they do not write it again soon.
pub fn key_used(hash: &[u8; 32], at: i64) {
    shared_keys::raise_hint(hash, u64::try_from(at).unwrap_or(0));
}

/// What a key principal's checks need about the key (None: no such key), and the
/// generation it may be used at again without asking (key_grant_current).
pub fn key_grant(key_id: [u8; 16], load: impl FnOnce() -> Option<KeyGrant>) -> (Option<Rc<KeyGrant>>, Option<u64>) {
    remembered(&GRANTS, &KEYS, key_id, |_| true, WhenFull::Empty, |_| load().map(Rc::new))
}

/// The bytes the maps hold, for authz_stats' memory figure (estimated).
pub fn bytes() -> usize {
    BY_HASH.with_borrow(|m| m.bytes) + GRANTS.with_borrow(|m| m.bytes)
}
