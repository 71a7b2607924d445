//! The API keys' side of the decision cache: what validation reads about a key (by its
//! token's hash) and what a key principal's checks read (liveness and whether a scope
//! covers a permission). Kept under the same trust protocol as the users' facts, and
//! dropped whenever a table of kind `keys` changes (api_keys, scopes, scope_permissions).
//! Expiry is not cached: it is compared with the clock at every use.

use super::tables;
use super::trust;
use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::hash::Hash;

/// Each of the two maps may hold this share of authz.cache_memory (estimated bytes,
/// `Footprint`); past it, it is emptied. An API server's connections see every active key,
/// so a map holds as many as fit: a validated key takes about 210 bytes, so the default
/// 16 MB holds about 9,000.
const SHARE_OF_BUDGET: usize = 8;

/// The heap bytes a value points to (estimated), for the maps' bound.
pub trait Footprint {
    fn bytes(&self) -> usize;
}

struct Memo<K, V> {
    epoch: u64,
    entries: HashMap<K, V>,
    bytes: usize,
}

impl<K: Eq + Hash, V: Clone + Footprint> Memo<K, V> {
    fn new() -> Self {
        Memo { epoch: 0, entries: HashMap::default(), bytes: 0 }
    }

    fn clear(&mut self) {
        self.entries = HashMap::default();
        self.bytes = 0;
    }

    /// Keeps `value`, first emptying the map when it would pass `limit` bytes; nothing is
    /// kept when the value alone would.
    fn insert(&mut self, key: K, value: V, limit: usize) {
        let bytes = Self::entry_bytes(&value);
        if self.bytes + bytes > limit {
            self.clear();
        }
        if bytes <= limit {
            self.bytes += bytes;
            if let Some(old) = self.entries.insert(key, value) {
                self.bytes -= Self::entry_bytes(&old);
            }
        }
    }

    /// An entry's bytes: the map's slot (and its control byte, rounded up) and the value's.
    fn entry_bytes(value: &V) -> usize {
        std::mem::size_of::<(K, V)>() + 8 + value.bytes()
    }
}

impl<T: Footprint> Footprint for Option<Rc<T>> {
    fn bytes(&self) -> usize {
        self.as_ref().map_or(0, |v| 16 + std::mem::size_of::<T>() + v.bytes())
    }
}

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

/// `load()`, or what it returned for the same key when this backend last called it and
/// nothing has changed since (`memo`'s entries are dropped at every change of a `keys`
/// table, and not used while the cache may not be trusted). With the generation the value
/// is current at, when it came from or went into the memo (see `key_grant_current`).
fn remembered<K: Eq + Hash, V: Clone + Footprint>(
    memo: &'static std::thread::LocalKey<RefCell<Memo<K, V>>>,
    key: K,
    load: impl FnOnce() -> V,
) -> (V, Option<u64>) {
    if !trust::cache_usable() {
        return (load(), None);
    }
    let epoch = tables::epochs().keys;
    let limit = super::budget() / SHARE_OF_BUDGET;
    let found = memo.with_borrow_mut(|m| {
        // (A smaller authz.cache_memory takes effect at once.)
        if m.epoch != epoch || m.bytes > limit {
            m.clear();
            m.epoch = epoch;
        }
        m.entries.get(&key).cloned()
    });
    if let Some(value) = found {
        return (value, Some(epoch));
    }
    let value = load();
    // Not kept if a change arrived while loading: it may predate what was read.
    if tables::epochs().keys != epoch {
        return (value, None);
    }
    memo.with_borrow_mut(|m| m.insert(key, value.clone(), limit));
    (value, Some(epoch))
}

/// Whether what `key_grant` returned at `generation` may still be used for this check.
pub fn key_grant_current(generation: u64) -> bool {
    trust::cache_usable() && tables::epochs().keys == generation
}

/// `key_grant_current`, if that needs no look at anything (trust::nothing_new); false:
/// ask `key_grant_current`. Raises nothing.
pub fn key_grant_current_without_looking(generation: u64) -> bool {
    trust::nothing_new() && tables::epochs().keys == generation
}

/// The key a token hash names (None: no such key), as `load` reads it.
pub fn key_by_hash(
    hash: [u8; 32],
    load: impl FnOnce() -> Option<Rc<crate::pg::keys::StoredKey>>,
) -> Option<Rc<crate::pg::keys::StoredKey>> {
    remembered(&BY_HASH, hash, load).0
}

/// What a key principal's checks need about the key (None: no such key), and the
/// generation it may be used at again without asking (key_grant_current).
pub fn key_grant(key_id: [u8; 16], load: impl FnOnce() -> Option<KeyGrant>) -> (Option<Rc<KeyGrant>>, Option<u64>) {
    remembered(&GRANTS, key_id, || load().map(Rc::new))
}

/// The bytes the maps hold, for authz_stats' memory figure (estimated).
pub fn bytes() -> usize {
    BY_HASH.with_borrow(|m| m.bytes) + GRANTS.with_borrow(|m| m.bytes)
}
