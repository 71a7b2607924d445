//! The backend-local decision cache (core::cache), and how checks use it:
//! - trust.rs: whether the cache may answer this check (docs/guide.md, Freshness);
//! - writers.rs: what transactions that change authorization data do for that;
//! - tables.rs: which tables' changes invalidate what (from their triggers);
//! - memo.rs, keys.rs, relations.rs: what API-key validation and relationship queries
//!   remember, under the same rules;
//! - uncached.rs: the SQL path, when the cache may not answer or is off.
//!
//! A hit is a hash lookup. A miss is read by direct index scans under the latest snapshot
//! (core::misses decides how much), with the catalog side cached apart from users.

mod keys;
mod memo;
mod relations;
mod shared_keys;
mod tables;
mod trust;
mod uncached;
mod writers;

pub use keys::{key_by_hash, key_grant, key_used, key_grant_current, key_grant_current_without_looking, KeyGrant};
pub use memo::Footprint;
pub use shared_keys::Shared;
pub use relations::{relation_answer, Answer, Remembered};
pub use uncached::load_for_check;

use crate::pg::local::Local;
use super::clock;
use super::gucs::CACHE_MEMORY_KB;
use super::latest::{self, value, IndexKey, Statement};
use super::owner::as_owner;
use super::stats::{self, Counter};
use crate::core::cache::{Cache, Catalog, Facts};
use crate::core::misses::{MissLog, OnMiss};
use crate::core::resolve::{Effect, Override};
use crate::core::ring::EVERYONE;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tables::Epochs;

/// Cached state is only used while the invalidation epochs it was filled at are current;
/// nothing but the code below touches it (invalidation callbacks only bump the epochs).
struct State {
    cache: Cache,
    facts_epoch: u64,
    catalog: Option<(Rc<Catalog>, u64)>,
    misses: MissLog,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        cache: Cache::new(0),
        facts_epoch: 0,
        catalog: None,
        misses: MissLog::default(),
    });
    /// Users whose cached facts a commit made stale (from the ring, by trust.rs), dropped
    /// at the next lookup; EVERYONE: all.
    static STALE_USERS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Counts the batches of stale users noted: part of the generation.
static STALE_BATCHES: Local<Cell<u64>> = Local::new(Cell::new(0));

/// Notes users whose cached facts are stale (trust.rs, before anything is read).
fn stale_users(users: Vec<u64>) {
    if users.is_empty() {
        return;
    }
    STALE_USERS.with_borrow_mut(|stale| {
        if stale.len() + users.len() > 4096 {
            *stale = vec![EVERYONE];
        } else {
            stale.extend(users);
        }
    });
    STALE_BATCHES.set(STALE_BATCHES.get() + 1);
}

/// Registers the callbacks and asks for the shared memory the cache needs; at library load.
pub fn register() {
    writers::register();
    tables::register();
}

/// The cache's budget in bytes (authz.cache_memory).
pub(super) fn budget() -> usize {
    usize::try_from(CACHE_MEMORY_KB.get()).unwrap_or(0) * 1024
}

/// The heap bytes the cache, its miss log, the catalog and the memos hold (estimated), for
/// authz_stats.
pub fn bytes() -> usize {
    let memos = keys::bytes() + relations::bytes();
    STATE.with_borrow(|s| s.cache.bytes() + s.misses.bytes() + s.catalog.as_ref().map_or(0, |(c, _)| c.bytes())) + memos
}

/// The facts a check reads: shared from the cache, with the generation they are current
/// at, or read for this check alone (no generation).
pub struct Found {
    pub facts: Rc<Facts>,
    pub generation: Option<u64>,
}

impl Found {
    /// Facts read for one check, not cached.
    pub fn read(facts: Facts) -> Self {
        Found { facts: Rc::new(facts), generation: None }
    }
}

/// Changes whenever cached facts may have become stale.
fn generation() -> u64 {
    tables::facts_epoch().wrapping_add(STALE_BATCHES.get())
}

/// Whether facts handed out by `lookup` at `generation` may still answer this check
/// (a call site remembers them between rows); counted as a hit if so.
pub fn still_current(generation: u64) -> bool {
    let current = trust::cache_usable() && self::generation() == generation;
    if current {
        stats::bump(Counter::CacheHits);
    }
    current
}

/// `still_current`, if that needs no look at anything (trust::nothing_new), uncounted;
/// false: ask `still_current`. Nothing here can raise an error.
pub fn current_without_looking(generation: u64) -> bool {
    trust::nothing_new() && self::generation() == generation
}

/// The facts for (user, permission) — cached, or read as core::misses decides (after
/// `before_load`, which may raise); None when the cache is off or may not answer this
/// check.
pub fn lookup(user: &str, permission: &str, resource: Option<&str>, before_load: impl FnOnce()) -> Option<Found> {
    if !trust::cache_usable() {
        stats::bump(Counter::CacheBypasses);
        return None;
    }
    let (budget, epoch) = (budget(), generation());
    let hit = STATE.with_borrow_mut(|s| {
        let facts_epoch = tables::epochs().facts;
        if s.facts_epoch != facts_epoch {
            s.cache.clear();
            s.facts_epoch = facts_epoch;
        }
        for user in STALE_USERS.take() {
            match user {
                EVERYONE => s.cache.clear(),
                user => s.cache.remove_user(user),
            }
        }
        if s.cache.budget() != budget {
            s.cache.set_budget(budget);
        }
        s.cache.get(user, permission).cloned()
    });
    if let Some(facts) = hit {
        stats::bump(Counter::CacheHits);
        return Some(Found { facts, generation: Some(epoch) });
    }
    stats::bump(Counter::CacheMisses);
    before_load();
    let on_miss = STATE.with_borrow_mut(|s| {
        let free = budget.saturating_sub(s.cache.bytes());
        s.misses.on_miss(user, permission, clock::message_start(), budget, free)
    });
    let limit = match on_miss {
        OnMiss::PointRead => return Some(Found::read(read_direct(user, permission, Reach::One(resource)).0)),
        OnMiss::LoadAll { limit } => limit,
    };
    let (facts, overrides) = read_direct(user, permission, Reach::All { limit: limit + 1 });
    if overrides > limit {
        STATE.with_borrow_mut(|s| s.misses.more_than(user, permission, limit));
        return Some(Found::read(read_direct(user, permission, Reach::One(resource)).0));
    }
    // Not kept if an invalidation arrived while reading: it may predate what was read.
    if generation() != epoch {
        return Some(Found::read(facts));
    }
    Some(STATE.with_borrow_mut(|s| {
        let (kept, facts) = s.cache.insert(user, permission, facts);
        if !kept {
            s.misses.too_large(user, permission, budget);
        }
        Found { facts, generation: kept.then_some(epoch) }
    }))
}

/// An override as a row of authz.grants stores it.
fn stored_override(grant_id: Option<i64>, effect: Option<String>, expires_at: Option<TimestampWithTimeZone>) -> Override {
    Override {
        grant_id,
        effect: effect.and_then(|e| Effect::parse(&e)).unwrap_or(Effect::Deny),
        expires_at: expires_at.map(i64::from),
    }
}

/// Which overrides `read_direct` reads besides the type level.
enum Reach<'a> {
    /// Those on one resource (None: none).
    One(Option<&'a str>),
    /// All of the user's for the permission, at most `limit`: what the cache holds.
    All { limit: usize },
}

/// What a check needs, for a cache that may answer: the catalog side from the cached
/// `Catalog`, the user's role and overrides by direct index reads under one latest
/// snapshot (no SPI: its executor start-up costs several times the reads). Also returns
/// how many overrides it read.
fn read_direct(user: &str, permission: &str, reach: Reach) -> (Facts, usize) {
    let catalog = catalog();
    let mut facts = Facts { known_permission: catalog.knows(permission), ..Facts::default() };
    if !facts.known_permission {
        return (facts, 0);
    }
    let text = IndexKey::text;
    let (user_key, permission_key) = (text(user), text(permission));
    let reader = latest::Reader::new();
    facts.role = reader
        .lookup((c"user_roles", c"user_roles_pkey"), &[user_key], &[c"role"], Some(1), |v| value(v[0]))
        .pop()
        .flatten();
    facts.role_allows = catalog.role_allows(facts.role.as_deref(), permission);
    let keys = [user_key, permission_key];
    let type_level = reader.lookup((c"grants", c"grants_type_key"), &keys, &[c"id", c"effect", c"expires_at"], Some(1), |v| {
        (None, stored_override(value(v[0]), value(v[1]), value(v[2])))
    });
    let (keys, limit) = match reach {
        Reach::One(None) => {
            let read = type_level.len();
            facts.set_overrides(type_level);
            return (facts, read);
        }
        Reach::One(Some(resource)) => (&[user_key, permission_key, text(resource)][..], 1),
        Reach::All { limit } => (&keys[..], limit),
    };
    let columns = [c"resource_id", c"id", c"effect", c"expires_at"];
    let resource_level = reader.lookup((c"grants", c"grants_resource_key"), keys, &columns, Some(limit), |v| {
        (value::<String>(v[0]), stored_override(value(v[1]), value(v[2]), value(v[3])))
    });
    let read = type_level.len() + resource_level.len();
    facts.set_overrides(type_level.into_iter().chain(resource_level));
    (facts, read)
}

static CATALOG_FACTS: Statement = Statement {
    sql: c"SELECT p.name, d.role
           FROM authz.permissions p
           LEFT JOIN (SELECT r.name AS role, rd.permission
                      FROM authz.roles r CROSS JOIN LATERAL authz.role_defaults(r.name) rd) d
             ON d.permission OPERATOR(pg_catalog.=) p.name",
    arg_types: &[],
};

/// The cached catalog, read (under the latest snapshot) if missing or stale. Not kept if
/// an invalidation arrived while reading.
fn catalog() -> Rc<Catalog> {
    let Epochs { catalog: epoch, .. } = tables::epochs();
    let cached = STATE.with_borrow(|s| s.catalog.as_ref().filter(|(_, e)| *e == epoch).map(|(c, _)| c.clone()));
    if let Some(catalog) = cached {
        return catalog;
    }
    let mut catalog = Catalog::default();
    as_owner(|| latest::query(&CATALOG_FACTS, &[], |row| catalog.add(row.get(1).unwrap_or_default(), row.get(2))));
    let catalog = Rc::new(catalog);
    if tables::epochs().catalog == epoch {
        STATE.with_borrow_mut(|s| s.catalog = Some((catalog.clone(), epoch)));
    }
    catalog
}
