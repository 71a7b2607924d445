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

/// Overrides a whole load on a repeat sighting in a later statement reads at least (and,
/// at first, at most).
pub const REPEAT_LOAD_LIMIT: usize = 1000;

/// Overrides a whole load reads in about the time of one point read (measured: a point
/// read 5 to 9 µs, a whole load about 1.2 µs per override; rounded down, so a pair is
/// loaded later rather than sooner).
const ROWS_PER_POINT_READ: usize = 4;

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
    /// The largest limit a whole load found the pair to have more overrides than (0: none).
    more_than: usize,
    /// The point reads it was answered with since its last whole load was planned (what
    /// not loading it has cost since).
    point_reads: usize,
}

#[derive(Default)]
pub struct MissLog {
    seen: HashMap<String, HashMap<String, Seen>>,
    bytes: usize,
}

impl MissLog {
    /// Chooses how to answer a miss, and remembers it. `budget` is the cache's budget in
    /// bytes (the log may hold an eighth of it besides); `free` is how much of it the cache
    /// does not use now.
    ///
    /// A first miss reads one resource: most pairs checked once never come back, and one
    /// check should not load thousands of overrides. A second miss in the same statement is
    /// a scan: load whole, up to what the budget can keep. A miss in a later statement
    /// loads whole, if the cache has room for it without evicting (when the working set is
    /// larger than the cache, whole loads on repeats would only evict each other), up to a
    /// limit that grows with the point reads the pair has cost (at least
    /// `REPEAT_LOAD_LIMIT`): a pair checked once per statement, often, is loaded when its
    /// point reads since the last load (or its attempt) have cost about what loading it
    /// does, and so again after a change drops it from the cache. A pair found larger than
    /// a limit is loaded again in a later statement only with twice that limit (so what
    /// failed loads read stays within what the successful one reads), and in a scan only
    /// with a larger one; a pair found too large for the budget is never loaded whole again
    /// under it: a scan over it reads each row once.
    pub fn on_miss(&mut self, user: &str, permission: &str, statement: i64, budget: usize, free: usize) -> OnMiss {
        let fits = budget / OVERRIDE_BYTES;
        let Some(seen) = self.seen_mut(user, permission) else {
            self.remember(user, permission, statement, budget / 8);
            return OnMiss::PointRead;
        };
        let same_statement = seen.statement == statement;
        seen.statement = statement;
        let load = match same_statement {
            true => Some(fits).filter(|&limit| limit > seen.more_than),
            false => {
                let limit = seen.point_reads.saturating_mul(ROWS_PER_POINT_READ).max(REPEAT_LOAD_LIMIT).min(fits);
                let room = limit.saturating_mul(OVERRIDE_BYTES) <= free;
                Some(limit).filter(|&limit| room && limit >= seen.more_than.saturating_mul(2))
            }
        };
        match load.filter(|&limit| limit > 0 && budget > seen.too_large_for) {
            Some(limit) => {
                // Point reads count again from here: should this load fail, or the cached
                // pair be dropped by a change, the next is paid for by those after it.
                seen.point_reads = 0;
                OnMiss::LoadAll { limit }
            }
            None => {
                seen.point_reads = seen.point_reads.saturating_add(1);
                OnMiss::PointRead
            }
        }
    }

    /// A whole load with this limit found more overrides.
    pub fn more_than(&mut self, user: &str, permission: &str, limit: usize) {
        if let Some(seen) = self.seen_mut(user, permission) {
            seen.more_than = seen.more_than.max(limit);
        }
    }

    /// A whole load found more than the cache could keep under this budget.
    pub fn too_large(&mut self, user: &str, permission: &str, budget: usize) {
        if let Some(seen) = self.seen_mut(user, permission) {
            seen.too_large_for = seen.too_large_for.max(budget);
        }
    }

    fn seen_mut(&mut self, user: &str, permission: &str) -> Option<&mut Seen> {
        self.seen.get_mut(user)?.get_mut(permission)
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
        let seen = Seen { statement, too_large_for: 0, more_than: 0, point_reads: 0 };
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
        assert_eq!(log.on_miss("u", "p", 1, BUDGET, BUDGET), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 1, BUDGET, BUDGET), OnMiss::LoadAll { limit: fits }, "a scan");
        assert_eq!(log.on_miss("u", "p", 2, BUDGET, BUDGET), OnMiss::LoadAll { limit: REPEAT_LOAD_LIMIT });
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, 0), OnMiss::PointRead, "a repeat, but no room");
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, 0), OnMiss::LoadAll { limit: fits }, "a scan even so");
        log.more_than("u", "p", fits);
        assert_eq!(log.on_miss("u", "p", 4, BUDGET, BUDGET), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 4, BUDGET, BUDGET), OnMiss::PointRead, "too large: no reload per row");
        assert_eq!(log.on_miss("u", "p", 5, BUDGET * 4, BUDGET * 4), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 5, BUDGET * 4, BUDGET * 4), OnMiss::LoadAll { limit: fits * 4 },
                   "a scan tries again under a larger budget");
        log.too_large("u", "p", BUDGET * 4);
        assert_eq!(log.on_miss("u", "p", 6, BUDGET * 4, BUDGET * 4), OnMiss::PointRead, "did not fit in the cache");
        assert_eq!(log.on_miss("u", "p", 6, BUDGET * 4, BUDGET * 4), OnMiss::PointRead, "... nor in a scan");
        assert_eq!(log.on_miss("v", "p", 5, 0, 0), OnMiss::PointRead);
        assert_eq!(log.on_miss("v", "p", 5, 0, 0), OnMiss::PointRead, "no budget: never a whole load");
    }

    /// A pair found larger than a repeat's limit is still loaded whole by a scan: it was
    /// too large for that limit, not for the budget (it was point-read row by row for the
    /// rest of the session before).
    #[test]
    fn a_failed_repeat_load_leaves_scans_alone() {
        let mut log = MissLog::default();
        let fits = BUDGET / OVERRIDE_BYTES;
        assert_eq!(log.on_miss("u", "p", 1, BUDGET, BUDGET), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 2, BUDGET, BUDGET), OnMiss::LoadAll { limit: REPEAT_LOAD_LIMIT });
        log.more_than("u", "p", REPEAT_LOAD_LIMIT);
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, BUDGET), OnMiss::PointRead, "a repeat, not tried again yet");
        assert_eq!(log.on_miss("u", "p", 3, BUDGET, BUDGET), OnMiss::LoadAll { limit: fits }, "a scan");
    }

    /// A pair checked once per statement is loaded when its point reads have cost about
    /// what loading it does; each failed load doubles the next one's limit. Dropped from the
    /// cache (a change to the user), it is loaded again once new point reads pay for it.
    #[test]
    fn repeats_load_a_large_pair_in_the_end() {
        let mut log = MissLog::default();
        let (budget, overrides) = (BUDGET * 16, 10_000);
        // How a sighting in each later statement is answered until a load succeeds: the
        // limits tried, and the point reads before them.
        let mut statement = 0;
        let mut until_loaded = |log: &mut MissLog| {
            let (mut loads, mut point_reads) = (Vec::new(), 0);
            loop {
                statement += 1;
                match log.on_miss("u", "p", statement, budget, budget) {
                    OnMiss::PointRead => point_reads += 1,
                    OnMiss::LoadAll { limit } if limit >= overrides => {
                        loads.push(limit);
                        return (loads, point_reads);
                    }
                    OnMiss::LoadAll { limit } => {
                        loads.push(limit);
                        log.more_than("u", "p", limit);
                    }
                }
            }
        };
        let (loads, point_reads) = until_loaded(&mut log);
        assert_eq!(loads, [1000, 2000, 4000, 8000, 16000]);
        let paid = [2000, 4000, 8000, 16000].map(|limit| limit / ROWS_PER_POINT_READ).iter().sum::<usize>();
        assert_eq!(point_reads, 1 + paid, "the first sighting, then what paid for each retry");
        let failed: usize = loads[..loads.len() - 1].iter().sum();
        assert!(failed < 2 * overrides, "failed loads read {failed} rows");
        let (loads, point_reads) = until_loaded(&mut log);
        assert_eq!((loads.as_slice(), point_reads), ([16000].as_slice(), 16000 / ROWS_PER_POINT_READ), "after a change dropped it");
    }

    #[test]
    fn bounded_in_bytes() {
        let mut log = MissLog::default();
        let budget = 8 * 64 * 1024; // the log may hold 64 kB
        for n in 0..10_000 {
            log.on_miss(&format!("user-{n}"), "document:read", 1, budget, budget);
            assert!(log.bytes() <= budget / 8);
        }
        assert!(log.bytes() > 0);
        let huge = "x".repeat(MAX_ID_BYTES + 1);
        let before = log.bytes();
        assert_eq!(log.on_miss(&huge, "p", 1, budget, budget), OnMiss::PointRead);
        assert_eq!(log.on_miss(&huge, "p", 1, budget, budget), OnMiss::PointRead, "never remembered");
        assert_eq!(log.bytes(), before);
    }
}
