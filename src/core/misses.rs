//! How a check whose (user, permission) is not in the decision cache is answered: read just
//! what it needs, or load the pair whole to cache it. Remembers which pairs missed, and
//! when, in a log bounded in bytes.

use super::heap;
use super::ids::MAX_ID_BYTES;
use rustc_hash::FxHashMap as HashMap;

/// How to answer a check whose (user, permission) is not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMiss {
    /// Read just this resource and the type level; cache nothing.
    PointRead,
    /// Read every override of the user for the permission and cache them, unless there are
    /// more than `limit` (then answer with a point read, and remember the pair as too large).
    LoadAll { limit: usize },
}

/// Overrides a user may hold for one permission and still be loaded whole on a repeat
/// sighting in a later statement.
pub const REPEAT_LOAD_LIMIT: usize = 1000;

/// The bytes a whole load is planned at per override (a resource-level override as
/// core::cache keeps it, with its key): turns the cache's budget into a limit on rows read.
pub const OVERRIDE_BYTES: usize = 128;

/// Bytes the log counts per remembered pair, besides the keys' own.
const ENTRY_BYTES: usize = 64;

struct Seen {
    /// The statement of the last miss.
    statement: i64,
    /// The largest cache budget the pair did not fit in (0: none).
    too_large_for: usize,
}

#[derive(Default)]
pub struct MissLog {
    seen: HashMap<String, HashMap<String, Seen>>,
    bytes: usize,
}

impl MissLog {
    /// Chooses how to answer a miss, and remembers it. `budget` is the cache's budget in
    /// bytes (the log may hold an eighth of it besides); `has_room` says whether the cache
    /// holds a repeat load without evicting.
    ///
    /// A first miss reads one resource: most pairs checked once never come back, and one
    /// check should not load thousands of overrides. A second miss in the same statement is
    /// a scan: load whole, up to what the budget can keep. A miss in a later statement
    /// loads whole if small and if the cache has room (when the working set is larger than
    /// the cache, whole loads on repeats would only evict each other). A pair found too
    /// large for the budget is never loaded whole again: a scan over it reads each row once.
    pub fn on_miss(&mut self, user: &str, permission: &str, statement: i64, budget: usize, has_room: bool) -> OnMiss {
        let fits = budget / OVERRIDE_BYTES;
        if let Some(seen) = self.seen.get_mut(user).and_then(|m| m.get_mut(permission)) {
            let same_statement = seen.statement == statement;
            seen.statement = statement;
            return match (same_statement, has_room) {
                _ if fits == 0 || budget <= seen.too_large_for => OnMiss::PointRead,
                (true, _) => OnMiss::LoadAll { limit: fits },
                (false, true) => OnMiss::LoadAll { limit: fits.min(REPEAT_LOAD_LIMIT) },
                (false, false) => OnMiss::PointRead,
            };
        }
        self.remember(user, permission, statement, budget / 8);
        OnMiss::PointRead
    }

    /// A whole load found more than its limit, or more than the cache could keep.
    pub fn too_large(&mut self, user: &str, permission: &str, budget: usize) {
        if let Some(seen) = self.seen.get_mut(user).and_then(|m| m.get_mut(permission)) {
            seen.too_large_for = seen.too_large_for.max(budget);
        }
    }

    /// The heap bytes the log holds (estimated, like core::cache).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Ids longer than any stored id are never remembered; past `limit` bytes the log is
    /// forgotten wholesale.
    fn remember(&mut self, user: &str, permission: &str, statement: i64, limit: usize) {
        if user.len() > MAX_ID_BYTES {
            return;
        }
        let new_user = !self.seen.contains_key(user);
        let cost = ENTRY_BYTES + heap::string(permission) + if new_user { ENTRY_BYTES + heap::string(user) } else { 0 };
        if self.bytes + cost > limit {
            *self = MissLog::default();
            if cost > limit {
                return;
            }
            return self.remember(user, permission, statement, limit);
        }
        self.bytes += cost;
        let seen = Seen { statement, too_large_for: 0 };
        self.seen.entry(user.to_string()).or_default().insert(permission.to_string(), seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: usize = 1 << 20;

    #[test]
    fn policy() {
        let mut log = MissLog::default();
        let fits = BUDGET / OVERRIDE_BYTES;
        assert_eq!(log.on_miss("u", "p", 1, BUDGET, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 1, BUDGET, true), OnMiss::LoadAll { limit: fits }, "a scan");
        assert_eq!(log.on_miss("u", "p", 2, BUDGET, true), OnMiss::LoadAll { limit: REPEAT_LOAD_LIMIT });
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, false), OnMiss::PointRead, "a repeat, but no room");
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, false), OnMiss::LoadAll { limit: fits }, "a scan even so");
        log.too_large("u", "p", BUDGET);
        assert_eq!(log.on_miss("u", "p", 4, BUDGET, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 4, BUDGET, true), OnMiss::PointRead, "too large: no reload per row");
        assert_eq!(log.on_miss("u", "p", 5, BUDGET * 2, true), OnMiss::LoadAll { limit: REPEAT_LOAD_LIMIT },
                   "tried again under a larger budget");
        assert_eq!(log.on_miss("v", "p", 5, 0, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("v", "p", 5, 0, true), OnMiss::PointRead, "no budget: never a whole load");
    }

    #[test]
    fn bounded_in_bytes() {
        let mut log = MissLog::default();
        let budget = 8 * 64 * 1024; // the log may hold 64 kB
        for n in 0..10_000 {
            log.on_miss(&format!("user-{n}"), "document:read", 1, budget, true);
            assert!(log.bytes() <= budget / 8);
        }
        assert!(log.bytes() > 0);
        let huge = "x".repeat(MAX_ID_BYTES + 1);
        let before = log.bytes();
        assert_eq!(log.on_miss(&huge, "p", 1, budget, true), OnMiss::PointRead);
        assert_eq!(log.on_miss(&huge, "p", 1, budget, true), OnMiss::PointRead, "never remembered");
        assert_eq!(log.bytes(), before);
    }
}
