//! Memos: values this backend loaded, kept while no change of the tables they come from
//! has been processed here (an invalidation epoch of tables.rs) and the cache may be
//! trusted (trust.rs), each map bounded by a share of authz.cache_memory. The API keys
//! (keys.rs) and the relationship answers (relations.rs) are kept this way.

use super::tables::{self, Epochs, Kind};
use super::trust;
use rustc_hash::FxHashMap as HashMap;
use std::hash::Hash;
use std::rc::Rc;

/// Each memo may hold this share of authz.cache_memory (estimated bytes, `Footprint`).
const SHARE_OF_BUDGET: usize = 8;

/// What a full memo does with a new value.
#[derive(Clone, Copy, PartialEq)]
pub enum WhenFull {
    /// Empties itself and keeps it: the working set moves in (loads read the tables).
    Empty,
    /// Keeps what it has: a second level behind the memo (shared memory) answers the rest
    /// cheaply, and emptying a memo thousands of values long on every round through more
    /// keys than it holds (the memo as a ring of misses) costs more than that second level.
    Keep,
}

/// The heap bytes a value points to (estimated), for the memos' bound.
pub trait Footprint {
    fn bytes(&self) -> usize;
}

impl<T: Footprint> Footprint for Option<Rc<T>> {
    fn bytes(&self) -> usize {
        self.as_ref().map_or(0, |v| 16 + std::mem::size_of::<T>() + v.bytes())
    }
}

impl<const N: usize> Footprint for [u8; N] {
    fn bytes(&self) -> usize {
        0
    }
}

impl Footprint for String {
    fn bytes(&self) -> usize {
        self.capacity()
    }
}

pub struct Memo<K, V> {
    epoch: u64,
    entries: HashMap<K, V>,
    /// The entries' bytes (keys, values, the map's slots).
    pub bytes: usize,
}

impl<K: Eq + Hash + Footprint, V: Clone + Footprint> Memo<K, V> {
    pub fn new() -> Self {
        Memo { epoch: 0, entries: HashMap::default(), bytes: 0 }
    }

    fn clear(&mut self) {
        self.entries = HashMap::default();
        self.bytes = 0;
    }

    /// Keeps `value` if it fits within `limit` bytes; when it would not, `when_full` says
    /// whether the map is emptied first. Nothing is kept when the entry alone would pass.
    fn insert(&mut self, key: K, value: V, limit: usize, when_full: WhenFull) {
        let bytes = Self::entry_bytes(&key, &value);
        if self.bytes + bytes > limit {
            if when_full == WhenFull::Keep {
                return;
            }
            self.clear();
        }
        if bytes > limit {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= Self::entry_bytes(&key, &old);
        }
        self.bytes += bytes;
        self.entries.insert(key, value);
    }

    /// An entry's bytes: the map's slot (and its control byte, rounded up), and what the
    /// key and the value point to.
    fn entry_bytes(key: &K, value: &V) -> usize {
        std::mem::size_of::<(K, V)>() + 8 + key.bytes() + value.bytes()
    }
}

/// The tables a memo's values come from: their kind, and the epoch that counts their
/// changes.
pub struct Source {
    pub kind: Kind,
    pub epoch: fn(Epochs) -> u64,
}

/// `load()`, or what it returned for the same key when this backend last called it, if
/// `still(value)` and nothing has changed since: `memo`'s entries are dropped at every
/// change of `source`'s tables, and not used while the cache may not be trusted. With the
/// epoch the value is current at, when it came from or went into the memo. `load` is told
/// whether the cache is trusted for this call (trust.rs).
pub fn remembered<K: Eq + Hash + Footprint, V: Clone + Footprint>(
    memo: &'static std::thread::LocalKey<std::cell::RefCell<Memo<K, V>>>,
    source: &Source,
    key: K,
    still: impl Fn(&V) -> bool,
    when_full: WhenFull,
    load: impl FnOnce(bool) -> V,
) -> (V, Option<u64>) {
    if !trust::cache_usable() || !tables::watched(source.kind) {
        return (load(false), None);
    }
    let epoch_of = source.epoch;
    let epoch = epoch_of(tables::epochs());
    let limit = super::budget() / SHARE_OF_BUDGET;
    let found = memo.with_borrow_mut(|m| {
        // (A smaller authz.cache_memory takes effect at once.)
        if m.epoch != epoch || m.bytes > limit {
            m.clear();
            m.epoch = epoch;
        }
        m.entries.get(&key).filter(|v| still(v)).cloned()
    });
    if let Some(value) = found {
        return (value, Some(epoch));
    }
    let value = load(true);
    // Not kept if a change arrived while loading: it may predate what was read.
    if epoch_of(tables::epochs()) != epoch {
        return (value, None);
    }
    memo.with_borrow_mut(|m| m.insert(key, value.clone(), limit, when_full));
    (value, Some(epoch))
}
