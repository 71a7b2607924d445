//! The decision cache's structure (the pg layer decides when it may be trusted): for each
//! (user, permission), everything a check of any resource needs — whether the permission
//! exists, the user's role and whether it grants the permission, and the user's overrides
//! for it at both levels. Bounded in bytes (core::heap's estimates); the least recently
//! used entries are evicted first.

use super::heap;
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

    /// Whether a check of `resource` must know the time: some override that could decide
    /// it expires.
    pub fn expiry_matters(&self, resource: Option<&str>) -> bool {
        self.resource_level_for(resource).iter().chain(&self.type_level).any(|o| o.expires_at.is_some())
    }

    /// The heap bytes these facts keep (estimated).
    pub fn bytes(&self) -> usize {
        let resources: usize = self.resource_level.iter().map(|(r, v)| heap::string(r) + heap::vec(v)).sum();
        self.role.as_deref().map_or(0, heap::string) + heap::vec(&self.type_level) + heap::map(&self.resource_level) + resources
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

    pub fn bytes(&self) -> usize {
        let entries: usize = self
            .holders
            .iter()
            .map(|(p, roles)| heap::string(p) + heap::vec(roles) + roles.iter().map(|r| heap::string(r)).sum::<usize>())
            .sum();
        heap::map(&self.holders) + entries
    }
}

struct Slot {
    facts: Facts,
    last_used: u64,
    /// The permission key's and the facts' bytes, as counted when stored.
    bytes: usize,
}

/// One user's entries.
#[derive(Default)]
struct PerUser {
    slots: HashMap<String, Slot>,
    slot_bytes: usize,
}

impl PerUser {
    fn bytes(&self, user: &str) -> usize {
        heap::string(user) + heap::map(&self.slots) + self.slot_bytes
    }
}

pub struct Cache {
    /// user -> permission -> facts; nested so that lookups borrow `&str` keys.
    entries: HashMap<String, PerUser>,
    /// The sum of the users' bytes (the outer table is added in `bytes`).
    users_bytes: usize,
    budget: usize,
    clock: u64,
}

impl Cache {
    /// An empty cache that may hold `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Cache { entries: HashMap::default(), users_bytes: 0, budget, clock: 0 }
    }

    pub fn get(&mut self, user: &str, permission: &str) -> Option<&Facts> {
        self.clock += 1;
        let slot = self.entries.get_mut(user)?.slots.get_mut(permission)?;
        slot.last_used = self.clock;
        Some(&slot.facts)
    }

    /// Stores the facts, evicting the least recently used entries to stay within the budget.
    /// Returns whether they were kept: not when they alone would not fit.
    pub fn insert(&mut self, user: &str, permission: &str, facts: Facts) -> bool {
        let bytes = heap::string(permission) + facts.bytes();
        if heap::string(user) + bytes > self.budget {
            return false;
        }
        self.remove(user, permission);
        self.clock += 1;
        let slot = Slot { facts, last_used: self.clock, bytes };
        let before = self.entries.get(user).map_or(0, |per_user| per_user.bytes(user));
        let per_user = self.entries.entry(user.to_string()).or_default();
        per_user.slots.insert(permission.to_string(), slot);
        per_user.slot_bytes += bytes;
        self.users_bytes = self.users_bytes + per_user.bytes(user) - before;
        if self.bytes() > self.budget {
            // The new entry is the most recently used: it goes last.
            self.evict(self.bytes() - self.budget);
        }
        self.entries.get(user).is_some_and(|per_user| per_user.slots.contains_key(permission))
    }

    /// Empties the cache and gives its memory back.
    pub fn clear(&mut self) {
        self.entries = HashMap::default();
        self.users_bytes = 0;
    }

    /// Sets a new budget in bytes, evicting as needed.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        if self.bytes() > budget {
            self.evict(self.bytes() - budget);
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The heap bytes held (estimated): what the budget bounds.
    pub fn bytes(&self) -> usize {
        heap::map(&self.entries) + self.users_bytes
    }

    fn remove(&mut self, user: &str, permission: &str) {
        let Some(per_user) = self.entries.get_mut(user) else {
            return;
        };
        let before = per_user.bytes(user);
        if let Some(slot) = per_user.slots.remove(permission) {
            per_user.slot_bytes -= slot.bytes;
        }
        self.users_bytes = self.users_bytes + per_user.bytes(user) - before;
        if per_user.slots.is_empty() {
            self.users_bytes -= per_user.bytes(user);
            self.entries.remove(user);
        }
    }

    /// Frees at least `needed` bytes, least recently used first — and an eighth of the
    /// budget besides, so that the sort over all entries is not repeated on every insert.
    fn evict(&mut self, needed: usize) {
        let mut by_age: Vec<(u64, String, String)> = self
            .entries
            .iter()
            .flat_map(|(u, per_user)| per_user.slots.iter().map(move |(p, s)| (s.last_used, u.clone(), p.clone())))
            .collect();
        by_age.sort_unstable();
        let target = self.bytes().saturating_sub(needed).min(self.budget - self.budget / 8);
        for (_, user, permission) in by_age {
            if self.bytes() <= target {
                break;
            }
            self.remove(&user, &permission);
        }
        if self.entries.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::resolve::Effect;
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
    fn hit_miss_and_bytes() {
        let mut c = Cache::new(1 << 20);
        assert!(c.get("u", "document:read").is_none());
        assert!(c.insert("u", "document:read", facts(3)));
        let three = c.bytes();
        assert!(three > 3 * 32, "{three}");
        assert_eq!(c.get("u", "document:read").unwrap().resource_level_for(Some("2")).len(), 1);
        assert!(c.get("u", "document:read").unwrap().resource_level_for(Some("9")).is_empty());
        assert!(c.get("u", "document:update").is_none());
        c.insert("u", "document:read", facts(1));
        assert!(c.bytes() < three, "replacing an entry releases its old bytes");
        c.clear();
        assert_eq!(c.bytes(), 0);
        assert!(c.get("u", "document:read").is_none());
    }

    #[test]
    fn long_keys_cost_their_length() {
        let mut c = Cache::new(1 << 20);
        c.insert("u", "p", facts(0));
        let short = c.bytes();
        c.clear();
        c.insert(&"u".repeat(10_000), "p", facts(0));
        assert!(c.bytes() > short + 9_900);
        assert!(!c.insert(&"u".repeat(2 << 20), "p", facts(0)), "a key larger than the budget is not kept");
    }

    #[test]
    fn expiry_matters_only_when_something_expires() {
        let mut f = facts(2);
        assert!(!f.expiry_matters(Some("1")));
        f.add(Some("1".into()), Override { grant_id: 2, effect: Effect::Deny, expires_at: Some(5) });
        assert!(f.expiry_matters(Some("1")) && !f.expiry_matters(Some("0")) && !f.expiry_matters(None));
        f.add(None, Override { grant_id: 3, effect: Effect::Deny, expires_at: Some(5) });
        assert!(f.expiry_matters(Some("0")) && f.expiry_matters(None));
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
        assert!(c.bytes() > 0);
    }

    #[test]
    fn least_recently_used_goes_first() {
        let mut probe = Cache::new(usize::MAX);
        probe.insert("a", "p", facts(3));
        let one = probe.bytes();
        let mut c = Cache::new(one * 5 / 2);
        c.insert("a", "p", facts(3));
        c.insert("b", "p", facts(3));
        c.get("a", "p");
        c.insert("c", "p", facts(3)); // no room for three: b is the oldest
        assert!(c.get("b", "p").is_none());
        assert!(c.get("a", "p").is_some() && c.get("c", "p").is_some());
        assert!(!c.insert("big", "p", facts(100)), "heavier than the budget: not stored");
        assert!(c.get("big", "p").is_none());
        assert!(c.get("a", "p").is_some());
    }

    proptest! {
        #[test]
        fn never_over_budget(
            budget in 0usize..20_000,
            ops in proptest::collection::vec((0..5u8, 0..3u8, 0..40usize), 0..60)
        ) {
            let mut c = Cache::new(budget);
            for (user, permission, size) in ops {
                c.insert(&user.to_string(), &permission.to_string(), facts(size));
                prop_assert!(c.bytes() <= budget);
                let recount: usize = heap::map(&c.entries)
                    + c.entries.iter().map(|(u, per_user)| {
                        heap::string(u) + heap::map(&per_user.slots)
                            + per_user.slots.iter().map(|(p, s)| heap::string(p) + s.facts.bytes()).sum::<usize>()
                    }).sum::<usize>();
                prop_assert_eq!(recount, c.bytes());
            }
            c.set_budget(budget / 2);
            prop_assert!(c.bytes() <= budget / 2);
        }
    }
}
