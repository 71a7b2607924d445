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

/// Entries kept in each map at most; past it the map is emptied (keys are few per backend).
const MAX_ENTRIES: usize = 4096;

struct Memo<K, V> {
    epoch: u64,
    entries: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Memo { epoch: 0, entries: HashMap::default() }
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

impl KeyGrant {
    pub fn covers(&self, permission: &str) -> bool {
        self.all_permissions || self.permissions.contains(permission)
    }
}

thread_local! {
    static BY_HASH: RefCell<Memo<[u8; 32], Option<crate::pg::keys::StoredKey>>> = RefCell::new(Memo::new());
    static GRANTS: RefCell<Memo<[u8; 16], Option<Rc<KeyGrant>>>> = RefCell::new(Memo::new());
}

/// `load()`, or what it returned for the same key when this backend last called it and
/// nothing has changed since (`memo`'s entries are dropped at every change of a `keys`
/// table, and not used while the cache may not be trusted). With the generation the value
/// is current at, when it came from or went into the memo (see `key_grant_current`).
fn remembered<K: Eq + Hash, V: Clone>(
    memo: &'static std::thread::LocalKey<RefCell<Memo<K, V>>>,
    key: K,
    load: impl FnOnce() -> V,
) -> (V, Option<u64>) {
    if !trust::cache_usable() {
        return (load(), None);
    }
    let epoch = tables::epochs().keys;
    let found = memo.with_borrow_mut(|m| {
        if m.epoch != epoch {
            m.entries.clear();
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
    memo.with_borrow_mut(|m| {
        if m.entries.len() >= MAX_ENTRIES {
            m.entries.clear();
        }
        m.entries.insert(key, value.clone());
    });
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
    load: impl FnOnce() -> Option<crate::pg::keys::StoredKey>,
) -> Option<crate::pg::keys::StoredKey> {
    remembered(&BY_HASH, hash, load).0
}

/// Notes that this backend has just written (or tried to write) the key's last use.
pub fn key_used(hash: [u8; 32], at: i64) {
    BY_HASH.with_borrow_mut(|m| {
        if let Some(Some(key)) = m.entries.get_mut(&hash) {
            key.last_used_at = Some(at);
        }
    });
}

/// What a key principal's checks need about the key (None: no such key), and the
/// generation it may be used at again without asking (key_grant_current).
pub fn key_grant(key_id: [u8; 16], load: impl FnOnce() -> Option<KeyGrant>) -> (Option<Rc<KeyGrant>>, Option<u64>) {
    remembered(&GRANTS, key_id, || load().map(Rc::new))
}

/// The entries held, for authz_stats' memory figure (estimated).
pub fn bytes() -> usize {
    let keys = BY_HASH.with_borrow(|m| m.entries.len()) * 256;
    let permissions = |g: &Option<Rc<KeyGrant>>| g.as_ref().map_or(0, |g| g.permissions.iter().map(|p| 48 + p.len()).sum());
    let grants = GRANTS.with_borrow(|m| m.entries.values().map(|g| 96 + permissions(g)).sum::<usize>());
    keys + grants
}
