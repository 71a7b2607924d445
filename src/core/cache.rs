//! The decision cache's structure (the pg layer decides when it may be trusted): for each
//! (user, permission), everything a check of any resource needs — whether the permission
//! exists, the user's role and whether it grants the permission, and the user's overrides
//! for it at both levels. Bounded by the number of overrides held; the least recently
//! used entries are evicted first.

use super::resolve::Override;
// FxHash: the keys are ids and permission names, and hashing is on every check's path.
use rustc_hash::FxHashMap as HashMap;

/// What the tables say about one user and one permission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub known_permission: bool,
    pub role: Option<String>,
    pub role_allows: bool,
    pub type_level: Vec<Override>,
    pub resource_level: HashMap<String, Vec<Override>>,
}

impl Facts {
    /// The weight an entry counts against the budget: one, plus one per override.
    pub fn weight(&self) -> usize {
        1 + self.type_level.len() + self.resource_level.values().map(Vec::len).sum::<usize>()
    }

    /// Files a stored override under its resource, or at the type level (no resource).
    pub fn add(&mut self, resource: Option<String>, grant: Override) {
        match resource {
            Some(resource) => self.resource_level.entry(resource).or_default().push(grant),
            None => self.type_level.push(grant),
        }
    }

    pub fn resource_level_for(&self, resource: Option<&str>) -> &[Override] {
        resource.and_then(|r| self.resource_level.get(r)).map_or(&[], Vec::as_slice)
    }
}

/// The catalog side of every check, small and shared by all users: which permissions
/// exist and which roles hold each by default (hierarchy and removals applied).
#[derive(Debug, Default)]
pub struct Catalog {
    /// permission -> the roles holding it by default
    holders: HashMap<String, Vec<String>>,
}

impl Catalog {
    /// Records a permission, and a role holding it by default if any.
    pub fn add(&mut self, permission: String, role: Option<String>) {
        let holders = self.holders.entry(permission).or_default();
        holders.extend(role);
    }

    pub fn knows(&self, permission: &str) -> bool {
        self.holders.contains_key(permission)
    }

    pub fn role_allows(&self, role: Option<&str>, permission: &str) -> bool {
        let holders = self.holders.get(permission).map_or(&[][..], Vec::as_slice);
        role.is_some_and(|r| holders.iter().any(|h| h == r))
    }
}

struct Slot {
    facts: Facts,
    last_used: u64,
}

pub struct Cache {
    /// user -> permission -> facts; nested so that lookups borrow `&str` keys.
    entries: HashMap<String, HashMap<String, Slot>>,
    held: usize,
    budget: usize,
    clock: u64,
}

impl Cache {
    pub fn new(budget: usize) -> Self {
        Cache { entries: HashMap::default(), held: 0, budget, clock: 0 }
    }

    pub fn get(&mut self, user: &str, permission: &str) -> Option<&Facts> {
        self.clock += 1;
        let slot = self.entries.get_mut(user)?.get_mut(permission)?;
        slot.last_used = self.clock;
        Some(&slot.facts)
    }

    /// Stores the facts, evicting the least recently used entries to stay within the budget.
    /// Facts heavier than the whole budget are not stored (the caller uses them once).
    pub fn insert(&mut self, user: &str, permission: &str, facts: Facts) {
        let weight = facts.weight();
        if weight > self.budget {
            return;
        }
        self.remove(user, permission);
        if self.held + weight > self.budget {
            self.evict(self.held + weight - self.budget);
        }
        self.clock += 1;
        self.held += weight;
        let slot = Slot { facts, last_used: self.clock };
        self.entries.entry(user.to_string()).or_default().insert(permission.to_string(), slot);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.held = 0;
    }

    /// Sets a new budget, evicting as needed.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        if self.held > budget {
            self.evict(self.held - budget);
        }
    }

    /// Overrides and entries currently held (the budget's unit).
    pub fn held(&self) -> usize {
        self.held
    }

    fn remove(&mut self, user: &str, permission: &str) {
        if let Some(per_user) = self.entries.get_mut(user) {
            if let Some(slot) = per_user.remove(permission) {
                self.held -= slot.facts.weight();
            }
            if per_user.is_empty() {
                self.entries.remove(user);
            }
        }
    }

    /// Frees at least `needed` weight, least recently used first — and an eighth of the
    /// budget besides, so that the sort over all entries is not repeated on every insert.
    fn evict(&mut self, needed: usize) {
        let mut by_age: Vec<(u64, String, String)> = self
            .entries
            .iter()
            .flat_map(|(u, per_user)| per_user.iter().map(move |(p, s)| (s.last_used, u.clone(), p.clone())))
            .collect();
        by_age.sort_unstable();
        let target = self.held.saturating_sub(needed).min(self.budget - self.budget / 8);
        for (_, user, permission) in by_age {
            if self.held <= target {
                break;
            }
            self.remove(&user, &permission);
        }
    }
}

/// How to answer a check whose (user, permission) is not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMiss {
    /// Read just this resource and the type level; cache nothing. A first sighting: most
    /// users checked once never come back, and a user with thousands of overrides would
    /// cost a long load for one answer.
    PointRead,
    /// Read every override of the user for the permission and cache them, unless there are
    /// more than `limit` (then answer with a point read).
    LoadAll { limit: Option<usize> },
}

/// Overrides a user may hold for one permission and still be loaded whole on a repeat
/// sighting in a later statement.
pub const REPEAT_LOAD_LIMIT: usize = 1000;

/// Remembers which (user, permission) pairs missed, and when, to choose an `OnMiss`.
/// Bounded: forgotten wholesale when it grows past `capacity`.
pub struct MissLog {
    /// user -> permission -> (statement of the last miss, too large to load on a repeat)
    seen: HashMap<String, HashMap<String, (i64, bool)>>,
    len: usize,
    capacity: usize,
}

impl MissLog {
    pub fn new(capacity: usize) -> Self {
        MissLog { seen: HashMap::default(), len: 0, capacity }
    }

    /// A second miss in the same statement means a scan: load whole, whatever the size. A
    /// miss in a later statement loads whole if small and if the cache has room for it
    /// without evicting (when the working set is larger than the cache, whole loads on
    /// repeats would only evict each other). A first miss reads one resource.
    pub fn on_miss(&mut self, user: &str, permission: &str, statement: i64, cache_has_room: bool) -> OnMiss {
        if let Some(last) = self.seen.get_mut(user).and_then(|m| m.get_mut(permission)) {
            let same_statement = last.0 == statement;
            last.0 = statement;
            return match (same_statement, last.1 || !cache_has_room) {
                (true, _) => OnMiss::LoadAll { limit: None },
                (false, false) => OnMiss::LoadAll { limit: Some(REPEAT_LOAD_LIMIT) },
                (false, true) => OnMiss::PointRead,
            };
        }
        if self.len >= self.capacity {
            self.seen.clear();
            self.len = 0;
        }
        self.len += 1;
        self.seen.entry(user.to_string()).or_default().insert(permission.to_string(), (statement, false));
        OnMiss::PointRead
    }

    /// A repeat load found more than REPEAT_LOAD_LIMIT overrides.
    pub fn too_large(&mut self, user: &str, permission: &str) {
        if let Some(last) = self.seen.get_mut(user).and_then(|m| m.get_mut(permission)) {
            last.1 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::resolve::Effect;

    #[test]
    fn miss_policy() {
        let mut log = MissLog::new(3);
        assert_eq!(log.on_miss("u", "p", 1, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 1, true), OnMiss::LoadAll { limit: None }, "a scan");
        assert_eq!(log.on_miss("u", "p", 2, true), OnMiss::LoadAll { limit: Some(REPEAT_LOAD_LIMIT) });
        assert_eq!(log.on_miss("u", "p", 3, false), OnMiss::PointRead, "a repeat, but no room");
        assert_eq!(log.on_miss("u", "p", 3, false), OnMiss::LoadAll { limit: None }, "a scan even so");
        log.too_large("u", "p");
        assert_eq!(log.on_miss("u", "p", 4, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("u", "p", 4, true), OnMiss::LoadAll { limit: None }, "still a scan");
        assert_eq!(log.on_miss("v", "p", 4, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("w", "p", 4, true), OnMiss::PointRead);
        assert_eq!(log.on_miss("x", "p", 4, true), OnMiss::PointRead, "over capacity: forgets");
        assert_eq!(log.on_miss("u", "p", 5, true), OnMiss::PointRead);
    }
    use proptest::prelude::*;

    fn facts(resources: usize) -> Facts {
        let grant = Override { grant_id: 1, effect: Effect::Allow, expires_at: None };
        Facts {
            known_permission: true,
            resource_level: (0..resources).map(|r| (r.to_string(), vec![grant])).collect(),
            ..Facts::default()
        }
    }

    #[test]
    fn hit_miss_and_weight() {
        let mut c = Cache::new(100);
        assert!(c.get("u", "document:read").is_none());
        c.insert("u", "document:read", facts(3));
        assert_eq!(c.held(), 4);
        assert_eq!(c.get("u", "document:read").unwrap().resource_level_for(Some("2")).len(), 1);
        assert!(c.get("u", "document:read").unwrap().resource_level_for(Some("9")).is_empty());
        assert!(c.get("u", "document:update").is_none());
        c.insert("u", "document:read", facts(1));
        assert_eq!(c.held(), 2, "replacing an entry releases its old weight");
        c.clear();
        assert_eq!(c.held(), 0);
        assert!(c.get("u", "document:read").is_none());
    }

    #[test]
    fn catalog() {
        let mut c = Catalog::default();
        c.add("document:read".into(), Some("viewer".into()));
        c.add("document:read".into(), Some("admin".into()));
        c.add("document:delete".into(), None);
        assert!(c.knows("document:read") && c.knows("document:delete") && !c.knows("document:x"));
        assert!(c.role_allows(Some("viewer"), "document:read"));
        assert!(!c.role_allows(Some("viewer"), "document:delete"));
        assert!(!c.role_allows(None, "document:read"));
        assert!(!c.role_allows(Some("viewer"), "document:x"));
    }

    #[test]
    fn least_recently_used_goes_first() {
        let mut c = Cache::new(10);
        c.insert("a", "p", facts(3)); // 4
        c.insert("b", "p", facts(3)); // 8
        c.get("a", "p");
        c.insert("c", "p", facts(3)); // needs 2 more: b is the oldest
        assert!(c.get("b", "p").is_none());
        assert!(c.get("a", "p").is_some() && c.get("c", "p").is_some());
        c.insert("big", "p", facts(10)); // heavier than the budget: not stored
        assert!(c.get("big", "p").is_none());
        assert!(c.get("a", "p").is_some());
    }

    #[test]
    fn eviction_frees_an_eighth_at_once() {
        let mut c = Cache::new(80);
        for u in 0..20 {
            c.insert(&u.to_string(), "p", facts(3)); // weight 4 each: full at 80
        }
        c.insert("new", "p", facts(3));
        assert_eq!(c.held(), 72, "entries evicted to below 70 (7/8 of the budget), then 4 added");
        assert!(c.get("0", "p").is_none() && c.get("2", "p").is_none() && c.get("3", "p").is_some());
    }

    proptest! {
        #[test]
        fn never_over_budget(
            budget in 1usize..50,
            ops in proptest::collection::vec((0..5u8, 0..3u8, 0..20usize), 0..60)
        ) {
            let mut c = Cache::new(budget);
            for (user, permission, size) in ops {
                c.insert(&user.to_string(), &permission.to_string(), facts(size));
                prop_assert!(c.held() <= budget);
                let recount: usize = c.entries.values().flat_map(|m| m.values()).map(|s| s.facts.weight()).sum();
                prop_assert_eq!(recount, c.held());
            }
            c.set_budget(budget / 2);
            prop_assert!(c.held() <= budget / 2);
        }
    }
}
