//! The decision cache's structure (the pg layer decides when it may be trusted): for each
//! (user, permission), everything a check of any resource needs — whether the permission
//! exists, the user's role and whether it grants the permission, and the user's overrides
//! for it at both levels. Bounded in bytes (core::heap's estimates); the least recently
//! used entries are evicted first.

use super::heap;
use super::ids::{canonical_integer, Id};
use super::resolve::{resolve, Decision, Effect, Override, Timestamp};
#[cfg(test)]
use super::resolve::DecidedBy;
// FxHash: the keys are ids and permission names, and hashing is on every check's path.
use rustc_hash::FxHashMap as HashMap;
use std::cell::Cell;
use std::rc::Rc;

/// What the tables say about one user and one permission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub known_permission: bool,
    pub role: Option<String>,
    pub role_allows: bool,
    pub type_level: Vec<Override>,
    pub resource_level: Resources,
}

impl Facts {
    /// Files stored overrides (replacing any) under their resources, or at the type level
    /// (no resource).
    pub fn set_overrides(&mut self, overrides: impl IntoIterator<Item = (Option<String>, Override)>) {
        let (mut type_level, mut resource_level) = (Vec::new(), Vec::new());
        for (resource, grant) in overrides {
            match resource {
                Some(resource) => resource_level.push((resource, grant)),
                None => type_level.push(grant),
            }
        }
        self.type_level = type_level;
        self.resource_level = Resources::new(resource_level);
    }

    pub fn resource_level_for(&self, resource: Option<Id>) -> Option<Override> {
        resource.and_then(|r| self.resource_level.get(r))
    }

    /// Decides a check of `resource` (None: the type level); `now` is called only when an
    /// override that could decide expires.
    pub fn decide(&self, resource: Option<Id>, now: impl FnOnce() -> Timestamp) -> Decision {
        let resource_level = self.resource_level_for(resource);
        let resource_level = resource_level.as_slice();
        let expires = resource_level.iter().chain(&self.type_level).any(|o| o.expires_at.is_some());
        resolve(resource_level, &self.type_level, self.role_allows, if expires { now() } else { 0 })
    }

    /// The decision for every resource (and the type level), when it does not depend on
    /// the resource or the clock: no resource-level overrides, none that expires.
    pub fn constant_answer(&self) -> Option<bool> {
        self.timeless_default().filter(|_| self.resource_level.is_empty())
    }

    /// When no override expires: the answer for a resource without a resource-level
    /// override (the type level's, else the role's). Then `timeless_answer` decides.
    pub fn timeless_default(&self) -> Option<bool> {
        let expires = self.type_level.iter().any(|o| o.expires_at.is_some()) || !self.resource_level.integers.expiring.is_empty()
            || self.resource_level.texts.values().any(|o| o.expires_at.is_some());
        (!expires).then(|| self.decide(None, || 0).allowed)
    }

    /// `decide(Some(Id::Integer(id)))`'s answer for facts whose `timeless_default` is
    /// `default`: the resource's override if it has one (a deny bit), else `default`.
    /// `near` is the caller's memo of where its last id was (Integers::position_near).
    #[inline]
    pub fn timeless_answer(&self, id: i64, default: bool, near: &Cell<usize>) -> bool {
        let integers = &self.resource_level.integers;
        integers.position_near(id, near).map_or(default, |i| !integers.denies(i))
    }

    /// The heap bytes these facts keep (estimated).
    pub fn bytes(&self) -> usize {
        self.role.as_deref().map_or(0, heap::string) + heap::vec(&self.type_level) + self.resource_level.bytes()
    }
}

/// One user's resource-level overrides for one permission, by resource: integer ids by
/// value (nothing formatted to find one; see `Integers`), other ids by their text. At most
/// one override per resource (the unique index of authz.grants); should a second ever
/// arrive, a deny is kept over an allow (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    integers: Integers,
    texts: HashMap<Box<str>, Override>,
}

impl Resources {
    fn new(overrides: Vec<(String, Override)>) -> Self {
        let mut integers = Vec::new();
        let mut texts: HashMap<Box<str>, Override> = HashMap::default();
        for (resource, grant) in overrides {
            match canonical_integer(&resource) {
                Some(n) => integers.push((n, grant)),
                None => {
                    texts
                        .entry(resource.into())
                        .and_modify(|kept| {
                            if kept.effect != Effect::Deny {
                                *kept = grant;
                            }
                        })
                        .or_insert(grant);
                }
            }
        }
        Resources { integers: Integers::new(integers), texts }
    }

    pub fn get(&self, resource: Id) -> Option<Override> {
        match resource.as_integer() {
            Some(n) => self.integers.get(n),
            None => match resource {
                Id::Text(s) => self.texts.get(s).copied(),
                Id::Integer(_) => None,
            },
        }
    }

    /// Drops the grant ids of the overrides on integer ids (the bulk of them): the cache
    /// keeps none.
    pub fn forget_grant_ids(&mut self) {
        self.integers.grant_ids = Box::default();
        for grant in self.texts.values_mut() {
            grant.grant_id = None;
        }
    }

    pub fn len(&self) -> usize {
        self.integers.ids.len() + self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> usize {
        self.integers.bytes() + heap::map(&self.texts) + self.texts.keys().map(|k| heap::string(k)).sum::<usize>()
    }
}

/// Overrides on integer ids, compactly: the ids in ascending order, and at the same
/// positions a bit for a deny, the expiry of the few that expire, and the grant ids (until
/// forgotten) — 8 bytes and a bit an override in the cache, against ~70 in a hash map of
/// whole overrides. An id is found through `starts`, a coarse index of buckets of about four
/// ids each (by the id's distance from the first), then a binary search within its bucket:
/// as fast as a hash probe for the ids of real tables, and never worse than a binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Integers {
    ids: Box<[i64]>,
    /// Bit `i % 64` of word `i / 64`: the override at position `i` denies.
    denies: Box<[u64]>,
    /// (position, expiry) of the overrides that expire, by position.
    expiring: Box<[(u32, Timestamp)]>,
    /// The grant ids, by position; empty once forgotten.
    grant_ids: Box<[i64]>,
    /// Bucket `b` holds the ids whose distance from the first id, shifted right by `shift`,
    /// is `b`: positions `starts[b]..starts[b + 1]`. Empty for a few ids (one search).
    starts: Box<[u32]>,
    shift: u32,
}

/// Below this many ids, one binary search without buckets.
const BUCKETED_FROM: usize = 16;

impl Integers {
    fn new(mut overrides: Vec<(i64, Override)>) -> Self {
        // By id, a deny first; of two on one id (the unique index allows none), it is kept.
        overrides.sort_by_key(|(id, grant)| (*id, grant.effect != Effect::Deny));
        overrides.dedup_by_key(|(id, _)| *id);
        let mut denies = vec![0u64; overrides.len().div_ceil(64)];
        let mut expiring = Vec::new();
        for (i, (_, grant)) in overrides.iter().enumerate() {
            if grant.effect == Effect::Deny {
                denies[i / 64] |= 1 << (i % 64);
            }
            if let Some(at) = grant.expires_at {
                expiring.push((i as u32, at));
            }
        }
        let mut integers = Integers {
            ids: overrides.iter().map(|(id, _)| *id).collect(),
            denies: denies.into(),
            expiring: expiring.into(),
            grant_ids: overrides.iter().map(|(_, grant)| grant.grant_id.unwrap_or_default()).collect(),
            starts: Box::default(),
            shift: 0,
        };
        if overrides.iter().any(|(_, grant)| grant.grant_id.is_none()) {
            integers.grant_ids = Box::default();
        }
        integers.index();
        integers
    }

    /// Builds `starts`: the smallest shift that leaves at most a quarter as many buckets as
    /// ids.
    fn index(&mut self) {
        let n = self.ids.len();
        if n < BUCKETED_FROM {
            return;
        }
        let span = self.distance(self.ids[n - 1]);
        let target = (n / 4) as u64;
        while span >> self.shift >= target {
            self.shift += 1;
        }
        let buckets = (span >> self.shift) as usize + 1;
        let mut starts = vec![0u32; buckets + 1];
        for &id in &self.ids {
            starts[self.bucket(id) + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        self.starts = starts.into();
    }

    /// How far `id` (not below the first id) is from the first id.
    fn distance(&self, id: i64) -> u64 {
        // The true difference is below 2^64, so the wrapped one, read unsigned, is exact.
        id.wrapping_sub(self.ids[0]) as u64
    }

    fn bucket(&self, id: i64) -> usize {
        (self.distance(id) >> self.shift) as usize
    }

    fn position(&self, id: i64) -> Option<usize> {
        self.search(id).ok()
    }

    /// Whether the override at position `i` denies.
    fn denies(&self, i: usize) -> bool {
        self.denies[i / 64] & (1 << (i % 64)) != 0
    }

    /// Where `id` is (Ok), or how many ids are below it (Err).
    fn search(&self, id: i64) -> Result<usize, usize> {
        let (Some(&first), Some(&last)) = (self.ids.first(), self.ids.last()) else {
            return Err(0);
        };
        if id < first || id > last {
            return Err(if id < first { 0 } else { self.ids.len() });
        }
        let (from, to) = match self.starts.is_empty() {
            true => (0, self.ids.len()),
            false => {
                let b = self.bucket(id);
                (self.starts[b] as usize, self.starts[b + 1] as usize)
            }
        };
        self.ids[from..to].binary_search(&id).map(|i| from + i).map_err(|i| from + i)
    }

    /// `position`, looking first where the previous id looked up was (`near`: its place
    /// as `search` gives it, kept up to date here), then one place on: a scan in id order
    /// finds its next id there, without the bucket and the search.
    #[inline]
    fn position_near(&self, id: i64, near: &Cell<usize>) -> Option<usize> {
        let place = |at: usize| {
            (at <= self.ids.len() && (at == 0 || self.ids[at - 1] < id) && self.ids.get(at).is_none_or(|&next| id <= next))
                .then_some(at)
        };
        let at = place(near.get())
            .or_else(|| place(near.get() + 1))
            .unwrap_or_else(|| match self.search(id) {
                Ok(at) | Err(at) => at,
            });
        near.set(at);
        (self.ids.get(at) == Some(&id)).then_some(at)
    }

    fn get(&self, id: i64) -> Option<Override> {
        let i = self.position(id)?;
        let expires_at = match self.expiring.is_empty() {
            true => None,
            false => self.expiring.binary_search_by_key(&(i as u32), |&(at, _)| at).ok().map(|e| self.expiring[e].1),
        };
        Some(Override {
            grant_id: self.grant_ids.get(i).copied(),
            effect: if self.denies(i) { Effect::Deny } else { Effect::Allow },
            expires_at,
        })
    }

    fn bytes(&self) -> usize {
        use std::mem::size_of_val;
        [size_of_val(&*self.ids), size_of_val(&*self.denies), size_of_val(&*self.expiring), size_of_val(&*self.grant_ids), size_of_val(&*self.starts)]
            .into_iter()
            .map(heap::allocation)
            .sum()
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
    /// Shared with the call sites that remember it (until the next invalidation).
    facts: Rc<Facts>,
    last_used: u64,
    /// The permission key's and the facts' bytes, as counted when stored.
    bytes: usize,
}

/// One user's entries, by permission (a user has few: a list costs less than a map).
struct PerUser {
    user: Box<str>,
    slots: Vec<(Box<str>, Slot)>,
    slot_bytes: usize,
}

impl PerUser {
    fn bytes(&self) -> usize {
        heap::string(&self.user) + heap::vec(&self.slots) + self.slot_bytes
    }

    fn slot(&mut self, permission: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|(p, _)| &**p == permission).map(|(_, slot)| slot)
    }
}

/// The key a user's entries are filed under: a hash of the id, the same in every backend
/// (never 0), so that a writer can name the users it changed in shared memory
/// (pg::cache::ring) and readers drop just their entries.
pub fn user_key(user: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
    hasher.write(user.as_bytes());
    hasher.finish().max(1)
}

pub struct Cache {
    /// user_key -> the user's entries (two users with one key: the newer replaces the older).
    entries: HashMap<u64, PerUser>,
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

    pub fn get(&mut self, user: &str, permission: &str) -> Option<&Rc<Facts>> {
        self.clock += 1;
        let per_user = self.entries.get_mut(&user_key(user)).filter(|p| &*p.user == user)?;
        let slot = per_user.slot(permission)?;
        slot.last_used = self.clock;
        Some(&slot.facts)
    }

    /// Stores the facts, evicting the least recently used entries to stay within the budget.
    /// Returns whether they were kept (not when they alone would not fit), and them.
    pub fn insert(&mut self, user: &str, permission: &str, mut facts: Facts) -> (bool, Rc<Facts>) {
        facts.resource_level.forget_grant_ids();
        // The facts live in their own allocation (with the Rc's two counts).
        let bytes = heap::string(permission) + heap::allocation(std::mem::size_of::<Facts>() + 16) + facts.bytes();
        let facts = Rc::new(facts);
        if heap::string(user) + bytes > self.budget {
            return (false, facts);
        }
        let key = user_key(user);
        if self.entries.get(&key).is_some_and(|p| &*p.user != user) {
            self.remove_user(key);
        }
        self.remove(key, permission);
        self.clock += 1;
        let slot = Slot { facts: facts.clone(), last_used: self.clock, bytes };
        let per_user = self.entries.entry(key).or_insert_with(|| PerUser {
            user: user.into(),
            slots: Vec::new(),
            slot_bytes: 0,
        });
        let before = if per_user.slots.is_empty() { 0 } else { per_user.bytes() };
        per_user.slots.push((permission.into(), slot));
        per_user.slots.shrink_to_fit();
        per_user.slot_bytes += bytes;
        self.users_bytes = self.users_bytes + per_user.bytes() - before;
        if self.bytes() > self.budget {
            // The new entry is the most recently used: it goes last.
            self.evict(self.bytes() - self.budget);
        }
        let kept = self.entries.get_mut(&key).is_some_and(|p| p.slot(permission).is_some());
        (kept, facts)
    }

    /// Empties the cache and gives its memory back.
    pub fn clear(&mut self) {
        self.entries = HashMap::default();
        self.users_bytes = 0;
    }

    /// Drops every entry of the user(s) with this key.
    pub fn remove_user(&mut self, key: u64) {
        if let Some(per_user) = self.entries.remove(&key) {
            self.users_bytes -= per_user.bytes();
        }
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

    fn remove(&mut self, key: u64, permission: &str) {
        let Some(per_user) = self.entries.get_mut(&key) else {
            return;
        };
        let before = per_user.bytes();
        if let Some(i) = per_user.slots.iter().position(|(p, _)| &**p == permission) {
            per_user.slot_bytes -= per_user.slots.swap_remove(i).1.bytes;
            per_user.slots.shrink_to_fit();
        }
        self.users_bytes = self.users_bytes + per_user.bytes() - before;
        if per_user.slots.is_empty() {
            self.remove_user(key);
        }
    }

    /// Frees at least `needed` bytes, least recently used first — and an eighth of the
    /// budget besides, so that the sort over all entries is not repeated on every insert.
    fn evict(&mut self, needed: usize) {
        let mut by_age: Vec<(u64, u64, String)> = self
            .entries
            .iter()
            .flat_map(|(key, per_user)| per_user.slots.iter().map(move |(p, s)| (s.last_used, *key, p.to_string())))
            .collect();
        by_age.sort_unstable();
        let target = self.bytes().saturating_sub(needed).min(self.budget - self.budget / 8);
        for (_, key, permission) in by_age {
            if self.bytes() <= target {
                break;
            }
            self.remove(key, &permission);
        }
        if self.entries.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(resources: usize) -> Facts {
        let grant = Override { grant_id: Some(1), effect: Effect::Allow, expires_at: None };
        let mut facts = Facts { known_permission: true, ..Facts::default() };
        facts.set_overrides((0..resources).map(|r| (Some(r.to_string()), grant)));
        facts
    }

    fn with(overrides: &[(Option<&str>, Override)]) -> Facts {
        let mut facts = Facts::default();
        facts.set_overrides(overrides.iter().map(|(r, o)| (r.map(str::to_string), *o)));
        facts
    }

    #[test]
    fn resources_by_integer_and_by_text() {
        let grant = |grant_id, effect| Override { grant_id: Some(grant_id), effect, expires_at: None };
        let mut overrides = vec![
            (Some("42"), grant(1, Effect::Allow)),
            (Some("042"), grant(2, Effect::Allow)),
            (Some("doc-7"), grant(3, Effect::Deny)),
        ];
        let f = with(&overrides);
        let id_of = |f: &Facts, r: Option<Id>| f.resource_level_for(r).and_then(|o| o.grant_id);
        assert_eq!(id_of(&f, Some(Id::Integer(42))), Some(1));
        assert_eq!(id_of(&f, Some(Id::Text("42"))), Some(1), "42 and '42' are one id");
        assert_eq!(id_of(&f, Some(Id::Text("042"))), Some(2), "'042' is another");
        assert_eq!(id_of(&f, Some(Id::Text("doc-7"))), Some(3));
        assert_eq!(id_of(&f, Some(Id::Integer(7))), None);
        assert_eq!(id_of(&f, None), None);
        assert_eq!(f.resource_level.len(), 3);
        overrides.extend([(Some("42"), grant(4, Effect::Deny)), (Some("42"), grant(5, Effect::Allow))]);
        overrides.extend([(Some("doc-7"), grant(6, Effect::Allow)), (Some("x"), grant(7, Effect::Allow))]);
        let f = with(&overrides);
        assert_eq!(id_of(&f, Some(Id::Integer(42))), Some(4), "a second override: the deny is kept");
        assert_eq!(id_of(&f, Some(Id::Text("doc-7"))), Some(3), "on text ids too");
        let mut cached = f.clone();
        cached.resource_level.forget_grant_ids();
        assert_eq!(id_of(&cached, Some(Id::Integer(42))), None, "forgotten");
        assert_eq!(id_of(&cached, Some(Id::Text("x"))), None);
        assert_eq!(cached.resource_level_for(Some(Id::Integer(42))).map(|o| o.effect), Some(Effect::Deny));
        assert!(cached.resource_level.bytes() < f.resource_level.bytes());
    }

    /// Integer ids found as a map of them finds them, whatever their spread, with effect and
    /// expiry at the right positions.
    fn check_integers(ids: &[i64], probes: &[i64]) {
        let grant = |n: i64| Override {
            grant_id: Some(n.wrapping_mul(3)),
            effect: if n % 3 == 0 { Effect::Deny } else { Effect::Allow },
            expires_at: (n % 5 == 0).then_some(n),
        };
        let model: std::collections::BTreeMap<i64, Override> = ids.iter().map(|&n| (n, grant(n))).collect();
        let mut f = Facts::default();
        f.set_overrides(ids.iter().map(|&n| (Some(n.to_string()), grant(n))));
        for &n in ids.iter().chain(probes) {
            assert_eq!(f.resource_level_for(Some(Id::Integer(n))), model.get(&n).copied(), "id {n}");
        }
        // Looked up near the last one, in id order and in the given orders.
        let integers = &f.resource_level.integers;
        let near = Cell::new(0);
        for &n in model.keys().chain(ids).chain(probes) {
            assert_eq!(integers.position_near(n, &near), integers.position(n), "id {n} near");
        }
    }

    #[test]
    fn integer_ids_at_the_edges() {
        check_integers(&[], &[0, i64::MIN, i64::MAX]);
        check_integers(&[i64::MIN, -1, 0, 1, i64::MAX], &[i64::MIN + 1, -2, 2, i64::MAX - 1]);
        let dense: Vec<i64> = (1..=10_000).collect();
        check_integers(&dense, &[0, 10_001, -5]);
        let clustered: Vec<i64> = (0..100).chain((0..100).map(|n| i64::MAX - n)).collect();
        check_integers(&clustered, &[100, 101, i64::MAX - 100, 1 << 40]);
    }

    #[test]
    fn hit_miss_and_bytes() {
        let mut c = Cache::new(1 << 20);
        assert!(c.get("u", "document:read").is_none());
        assert!(c.insert("u", "document:read", facts(30)).0);
        let thirty = c.bytes();
        assert!(thirty > 30 * 8, "{thirty}");
        assert!(c.get("u", "document:read").unwrap().resource_level_for(Some(Id::Integer(2))).is_some());
        assert!(c.get("u", "document:read").unwrap().resource_level_for(Some(Id::Text("99"))).is_none());
        assert!(c.get("u", "document:update").is_none());
        c.insert("u", "document:read", facts(1));
        assert!(c.bytes() < thirty, "replacing an entry releases its old bytes");
        c.clear();
        assert_eq!(c.bytes(), 0);
        assert!(c.get("u", "document:read").is_none());
    }

    #[test]
    fn one_user_removed_by_key() {
        let mut c = Cache::new(1 << 20);
        c.insert("a", "p", facts(3));
        c.insert("a", "q", facts(3));
        c.insert("b", "p", facts(3));
        let before = c.bytes();
        c.remove_user(user_key("a"));
        assert!(c.get("a", "p").is_none() && c.get("a", "q").is_none());
        assert!(c.get("b", "p").is_some());
        assert!(c.bytes() < before);
        c.remove_user(user_key("b"));
        assert_eq!(c.bytes(), heap::map(&c.entries));
        assert_ne!(user_key(""), 0);
    }

    #[test]
    fn long_keys_cost_their_length() {
        let mut c = Cache::new(1 << 20);
        c.insert("u", "p", facts(0));
        let short = c.bytes();
        c.clear();
        c.insert(&"u".repeat(10_000), "p", facts(0));
        assert!(c.bytes() > short + 9_900);
        assert!(!c.insert(&"u".repeat(2 << 20), "p", facts(0)).0, "a key larger than the budget is not kept");
    }

    #[test]
    fn a_constant_answer_only_when_no_resource_or_clock_matters() {
        let role_only = Facts { known_permission: true, role_allows: true, ..Facts::default() };
        assert_eq!(role_only.constant_answer(), Some(true));
        assert_eq!(Facts::default().constant_answer(), Some(false));
        let type_level = |expires_at| (None, Override { grant_id: Some(1), effect: Effect::Deny, expires_at });
        let mut f = role_only.clone();
        f.set_overrides([type_level(None)]);
        assert_eq!(f.constant_answer(), Some(false), "a type-level deny decides everything");
        f.set_overrides([type_level(Some(5))]);
        assert_eq!(f.constant_answer(), None, "until it expires");
        assert_eq!(facts(1).constant_answer(), None, "a resource-level override");
    }

    #[test]
    fn the_clock_is_read_only_when_something_expires() {
        let mut f = facts(2);
        let (one, zero) = (Some(Id::Integer(1)), Some(Id::Integer(0)));
        let never = || -> Timestamp { panic!("the clock was read") };
        assert!(f.decide(one, never).allowed);
        let deny = |grant_id, resource| (resource, Override { grant_id: Some(grant_id), effect: Effect::Deny, expires_at: Some(5) });
        let allow = |r: usize| (Some(r.to_string()), Override { grant_id: Some(1), effect: Effect::Allow, expires_at: None });
        f.set_overrides([allow(0), allow(1), deny(2, Some("1".to_string()))]);
        assert_eq!(f.decide(one, || 4).decided_by, DecidedBy::Resource, "the deny, until 5");
        assert_eq!(f.decide(one, || 5).decided_by, DecidedBy::Default, "then nothing");
        assert!(f.decide(zero, never).allowed && !f.decide(None, never).allowed);
        f.set_overrides([allow(0), allow(1), deny(2, Some("1".to_string())), deny(3, None)]);
        assert!(f.decide(zero, || 4).allowed && !f.decide(None, || 4).allowed, "the resource level first");
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
        probe.insert("a", "p", facts(50));
        let one = probe.bytes();
        let mut c = Cache::new(one * 5 / 2);
        c.insert("a", "p", facts(50));
        c.insert("b", "p", facts(50));
        c.get("a", "p");
        c.insert("c", "p", facts(50)); // no room for three: b is the oldest
        assert!(c.get("b", "p").is_none());
        assert!(c.get("a", "p").is_some() && c.get("c", "p").is_some());
        assert!(!c.insert("big", "p", facts(500)).0, "heavier than the budget: not stored");
        assert!(c.get("big", "p").is_none());
        assert!(c.get("a", "p").is_some());
    }

    proptest! {
        #[test]
        fn the_timeless_answer_is_the_decision(
            resources in proptest::collection::vec((-20i64..20, any::<bool>(), prop::option::of(1i64..3)), 0..40),
            type_level in prop::option::of((any::<bool>(), prop::option::of(1i64..3))),
            text_expires in any::<bool>(),
            role_allows in any::<bool>(),
            order in proptest::collection::vec(0i64..50, 0..60),
        ) {
            // One override per resource, as the unique index of authz.grants keeps them.
            let resources: std::collections::BTreeMap<i64, (bool, Option<i64>)> =
                resources.into_iter().map(|(id, deny, expires)| (id, (deny, expires))).collect();
            let grant = |deny: bool, expires_at| Override { grant_id: None, effect: if deny { Effect::Deny } else { Effect::Allow }, expires_at };
            let mut f = Facts { known_permission: true, role_allows, ..Facts::default() };
            let texts = [(Some("doc".to_string()), grant(false, text_expires.then_some(2)))];
            f.set_overrides(resources.iter().map(|(&id, &(deny, expires))| (Some(id.to_string()), grant(deny, expires)))
                .chain(type_level.map(|(deny, expires)| (None, grant(deny, expires))))
                .chain(texts));
            let expires = resources.values().any(|r| r.1.is_some()) || type_level.is_some_and(|t| t.1.is_some()) || text_expires;
            prop_assert_eq!(f.timeless_default().is_some(), !expires);
            if let Some(default) = f.timeless_default() {
                // In id order (as a scan finds them), then in any order, one memo throughout.
                let near = Cell::new(0);
                let mut ids: Vec<i64> = (-25..25).collect();
                ids.extend(order.iter().map(|&i| i - 25));
                for id in ids {
                    prop_assert_eq!(f.timeless_answer(id, default, &near), f.decide(Some(Id::Integer(id)), || 0).allowed, "id {}", id);
                }
            }
        }

        #[test]
        fn integer_ids_found_as_a_map_finds_them(
            ids in proptest::collection::vec(prop_oneof![any::<i64>(), -50i64..50, 1_000_000i64..1_000_100], 0..200),
            probes in proptest::collection::vec(any::<i64>(), 0..20),
        ) {
            check_integers(&ids, &probes);
        }

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
                    + c.entries.values().map(|per_user| {
                        heap::string(&per_user.user) + heap::vec(&per_user.slots)
                            + per_user.slots.iter().map(|(p, s)| heap::string(p) + heap::allocation(std::mem::size_of::<Facts>() + 16) + s.facts.bytes()).sum::<usize>()
                    }).sum::<usize>();
                prop_assert_eq!(recount, c.bytes());
            }
            c.set_budget(budget / 2);
            prop_assert!(c.bytes() <= budget / 2);
        }
    }
}
