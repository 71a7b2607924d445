//! Which tables invalidate the decision cache, and what a change of each makes stale.
//!
//! One source: the `note_change` triggers of sql/cache.sql. Every table carrying one is an
//! invalidating table, and the trigger's argument says what its changes make stale:
//! `facts` (the cached users' entries), `keys` (the cached API keys), `relations` (the
//! remembered relationship answers) or `catalog` (everything). This backend reads that
//! from pg_trigger, and reads it again when one of those tables is invalidated, which is
//! also how it notices triggers being disabled (`ALTER TABLE ... DISABLE TRIGGER`, as
//! pg_restore --disable-triggers does) or put to fire in origin mode only: writes would
//! then go unnoticed, so the cache is not trusted until the triggers are back.
//!
//! A write does not invalidate the table it changed: the trigger invalidates its kind's
//! signal table (`authz.signal_facts`, ...; empty, read by no plan), so that the plans
//! reading the written table stay valid in every backend, the writer's own included.
//! Invalidations of the tables themselves come from DDL, and make this backend look at
//! their triggers again. The signal tables are those of the trigger function's schema, for
//! writers and readers alike; a relation taking or leaving one of their names there (a
//! signal table dropped, renamed or made again) has this backend find them again.
//!
//! The relcache callback only bumps counters (`Cell`s): it never borrows the cache, so an
//! invalidation processed at any moment, even while the cache is in use, is safe.

use crate::pg::local::Local;
use crate::pg::latest::{self, Statement};
use crate::pg::owner::as_owner;
use crate::pg::stats::{self, Counter};
use pgrx::pg_sys::{self, Datum, Oid};
use std::cell::{Cell, RefCell};

/// What a change of an invalidating table makes stale.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Facts,
    Keys,
    Relations,
    Catalog,
}

/// The signal table of each kind (sql/cache.sql), in the schema of authz.note_change().
const SIGNALS: [(Kind, &std::ffi::CStr); 4] = [
    (Kind::Facts, c"signal_facts"),
    (Kind::Keys, c"signal_keys"),
    (Kind::Relations, c"signal_relations"),
    (Kind::Catalog, c"signal_catalog"),
];

/// The signal table of `kind` beside the trigger function `note_change` (None: there is
/// none, as in a database whose install script predates them: the table written is
/// invalidated then).
pub fn signal_of(kind: Kind, note_change: Oid) -> Option<Oid> {
    // SAFETY: a syscache lookup by oid.
    signal_in(kind, unsafe { pg_sys::get_func_namespace(note_change) })
}

/// The signal table of `kind` in `namespace`.
fn signal_in(kind: Kind, namespace: Oid) -> Option<Oid> {
    let (_, name) = SIGNALS.iter().find(|(k, _)| *k == kind)?;
    // SAFETY: a syscache lookup by name.
    let oid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), namespace) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// The hash under which PostgreSQL invalidates the pg_class row named `name` in `namespace`
/// (a relation created, renamed or dropped under that name).
fn relation_name_hash(name: &std::ffi::CStr, namespace: Oid) -> u32 {
    let by_name = pg_sys::SysCacheIdentifier::RELNAMENSP as i32;
    // SAFETY: hashes the two keys of the syscache by name (a C string, as lookups pass it).
    unsafe { pg_sys::GetSysCacheHashValue(by_name, Datum::from(name.as_ptr()), Datum::from(namespace), Datum::from(0), Datum::from(0)) }
}

impl Kind {
    /// The kind a note_change trigger names in its argument (None: none it knows).
    pub fn of(trigger: &pg_sys::Trigger) -> Option<Kind> {
        // SAFETY: tgargs holds tgnargs C strings.
        let argument = (trigger.tgnargs == 1).then(|| unsafe { std::ffi::CStr::from_ptr(*trigger.tgargs) }.to_bytes());
        match argument {
            Some(b"facts") => Some(Kind::Facts),
            Some(b"keys") => Some(Kind::Keys),
            Some(b"relations") => Some(Kind::Relations),
            Some(b"catalog") => Some(Kind::Catalog),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not read yet, or a table is gone: read pg_trigger.
    Unknown,
    /// A table was invalidated: look at the known tables' triggers again.
    Stale,
    /// Every invalidating table has its triggers, enabled as they must be.
    Sound,
    /// Something is missing or disabled: read again once anything has committed (the count
    /// of completed transactions differs).
    Unsound { completions: u64 },
}

/// An invalidating table as last seen: what its changes make stale, and its note_change
/// triggers (re-created triggers mean the list may have changed: read it again), each with
/// the transaction that last wrote its pg_trigger row: an ALTER TABLE ... DISABLE TRIGGER
/// and ENABLE around a write, committed together, leave the triggers as they were but not
/// that (the write named no users: everything is flushed).
#[derive(Clone)]
struct Table {
    oid: Oid,
    kind: Kind,
    triggers: Vec<(Oid, u32)>,
}

thread_local! {
    static TABLES: RefCell<Vec<Table>> = const { RefCell::new(Vec::new()) };
    /// Every signal table found (an invalidation sent to one before it was replaced still
    /// counts). Pushed to after the catalog lookups, never borrowed across one.
    static SIGNAL_TABLES: RefCell<Vec<(Oid, Kind)>> = const { RefCell::new(Vec::new()) };
    /// The hashes of the signal tables' names in their schema (relation_name_hash).
    static SIGNAL_NAMES: Cell<[u32; 4]> = const { Cell::new([0; 4]) };
    /// The trigger function, authz.note_change().
    static NOTE_CHANGE: Cell<Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

static STATE: Local<Cell<State>> = Local::new(Cell::new(State::Unknown));
/// Bumped by every invalidation that makes the cached users' facts stale.
static FACTS_EPOCH: Local<Cell<u64>> = Local::new(Cell::new(0));
/// Bumped by every invalidation that makes the cached catalog stale.
static CATALOG_EPOCH: Local<Cell<u64>> = Local::new(Cell::new(0));
/// Bumped by every invalidation that makes the cached API keys stale.
static KEYS_EPOCH: Local<Cell<u64>> = Local::new(Cell::new(0));
/// Bumped by every invalidation that makes the remembered relationship answers stale.
static RELATIONS_EPOCH: Local<Cell<u64>> = Local::new(Cell::new(0));

/// The invalidation counters: cached state filled at other values is stale.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Epochs {
    pub facts: u64,
    pub catalog: u64,
    pub keys: u64,
    pub relations: u64,
}

/// The facts' epoch alone (the per-row path reads no more).
pub fn facts_epoch() -> u64 {
    FACTS_EPOCH.get()
}

pub fn epochs() -> Epochs {
    Epochs { facts: FACTS_EPOCH.get(), catalog: CATALOG_EPOCH.get(), keys: KEYS_EPOCH.get(), relations: RELATIONS_EPOCH.get() }
}

/// Registers the relcache and relation-name callbacks; called once, at library load.
pub fn register() {
    let by_name = pg_sys::SysCacheIdentifier::RELNAMENSP as i32;
    // SAFETY: plain registrations of functions that live as long as the library.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(by_name, Some(on_relation_name_invalidation), Datum::from(0));
    }
}

/// A relation took or left a signal table's name in its schema (0: the whole syscache was
/// reset). Writers may now signal a table this backend does not know: everything is stale,
/// and the tables are read again before the cache is trusted.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_relation_name_invalidation(_arg: Datum, _cache: std::ffi::c_int, hash: u32) {
    if hash == 0 || SIGNAL_NAMES.get().contains(&hash) {
        make_stale(None);
        STATE.set(State::Unknown);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: Datum, relid: Oid) {
    // InvalidOid: every relation (after a lost invalidation queue).
    let kind = match relid == pg_sys::InvalidOid {
        true => None,
        false => match TABLES.try_with(|t| t.try_borrow().map(|t| (t.is_empty(), t.iter().find(|t| t.oid == relid).map(|t| t.kind)))) {
            Ok(Ok((none_known, None))) => {
                // A write's, on its kind's signal table: that kind is stale, and there is
                // nothing to look at again.
                match SIGNAL_TABLES.try_with(|s| s.try_borrow().map(|s| s.iter().find(|(oid, _)| *oid == relid).map(|s| s.1))) {
                    Ok(Ok(Some(kind))) => return make_stale(Some(kind)),
                    Ok(Ok(None)) => {}
                    _ => return make_stale(None), // unknown while being read: assume the worst
                }
                // Not one of ours, unless this backend has not looked (or must look again):
                // then it may be a keys table, changed by DDL here (shared_keys.rs).
                if none_known || STATE.get() != State::Sound {
                    super::writers::note_invalidation(relid);
                }
                return;
            }
            Ok(Ok((_, Some(kind)))) => Some(kind),
            _ => None, // unknown while being read: assume the worst
        },
    };
    make_stale(kind);
    if matches!(kind, None | Some(Kind::Keys | Kind::Catalog)) {
        super::writers::note_invalidation(relid);
    }
    STATE.set(match (kind, STATE.get()) {
        (None, _) => State::Unknown,
        (_, State::Sound | State::Unsound { .. }) => State::Stale,
        (_, state) => state,
    });
}

/// Bumps the epochs a change of `kind` makes stale: a kind its own side, a catalog change
/// (and an unknown one, None) everything.
fn make_stale(kind: Option<Kind>) {
    let bump = |epoch: &Cell<u64>| epoch.set(epoch.get() + 1);
    // A facts table's rows name their users in the ring (trust.rs) where there is one.
    let users_named = kind == Some(Kind::Facts)
        && super::trust::users_named_by_ring()
        && !super::writers::this_transaction_changed_users();
    let everything = matches!(kind, None | Some(Kind::Catalog));
    if (everything || kind == Some(Kind::Facts)) && !users_named {
        flush_facts();
    }
    if everything || kind == Some(Kind::Keys) {
        bump(&KEYS_EPOCH);
    }
    if everything || kind == Some(Kind::Relations) {
        bump(&RELATIONS_EPOCH);
    }
    if everything {
        bump(&CATALOG_EPOCH);
    }
}

/// Makes every cached user's facts stale.
fn flush_facts() {
    stats::bump(Counter::Invalidations);
    FACTS_EPOCH.set(FACTS_EPOCH.get() + 1);
}

/// Whether the last look found every write invalidating (nothing read: a plain read).
pub fn known_sound() -> bool {
    STATE.get() == State::Sound
}

/// Whether some invalidating table is of `kind` (as last looked at): a database whose
/// install script predates the kind has no such table, and its writes invalidate nothing.
pub fn watched(kind: Kind) -> bool {
    TABLES.with_borrow(|tables| tables.iter().any(|t| t.kind == kind))
}

/// Whether every write to the tables a check reads reaches the caches now. `completions`
/// is the server's count of completed transactions, read by the caller.
pub fn all_writes_invalidate(completions: u64) -> bool {
    // Invalidations processed while looking (opening a table takes a lock) may ask for
    // another look; a few rounds, then give up for this check.
    for _ in 0..3 {
        match STATE.get() {
            State::Sound => return true,
            State::Unsound { completions: seen } if seen == completions => return false,
            State::Stale => {}
            State::Unknown | State::Unsound { .. } => read_from_triggers(),
        }
        match look_again() {
            Some(sound) if STATE.get() == State::Stale => {
                STATE.set(if sound { State::Sound } else { State::Unsound { completions } })
            }
            Some(_) => {}
            None => STATE.set(State::Unknown), // a table gone, or its triggers re-created
        }
    }
    false
}

static NOTE_CHANGE_TRIGGERS: Statement = Statement {
    sql: c"SELECT DISTINCT f.oid, t.tgrelid
           FROM (SELECT pg_catalog.to_regprocedure('authz.note_change()')::pg_catalog.oid AS oid) f
           JOIN pg_catalog.pg_trigger t ON t.tgfoid OPERATOR(pg_catalog.=) f.oid",
    arg_types: &[],
};

/// Finds the invalidating tables in pg_trigger (their kinds come with a look at them).
fn read_from_triggers() {
    // As the owner: naming authz.note_change() takes USAGE on schema authz.
    let found = as_owner(|| latest::query(&NOTE_CHANGE_TRIGGERS, &[], |row| (row.get::<Oid>(1), row.get::<Oid>(2))));
    NOTE_CHANGE.set(found.first().and_then(|(function, _)| *function).unwrap_or(pg_sys::InvalidOid));
    // Until looked at: every change counts as a catalog change (the safe side), and the
    // triggers as unknown (None below never matches).
    TABLES.set(found.into_iter().filter_map(|(_, oid)| Some(Table { oid: oid?, kind: Kind::Catalog, triggers: vec![] })).collect());
    STATE.set(State::Stale);
}

/// Looks at the triggers of the known tables (in the relcache): whether all are sound, or
/// None if a table is gone or its triggers were re-created (then the list is read again).
fn look_again() -> Option<bool> {
    let known = TABLES.with_borrow(|t| t.clone());
    let mut sound = !known.is_empty();
    let mut seen = Vec::with_capacity(known.len());
    for table in known {
        let now = inspect(table.oid)?;
        let oids = |triggers: &[(Oid, u32)]| triggers.iter().map(|t| t.0).collect::<Vec<_>>();
        if !table.triggers.is_empty() && oids(&now.triggers) != oids(&table.triggers) {
            return None;
        }
        if now.triggers != table.triggers {
            flush_facts();
        }
        sound &= now.sound && now.kind.is_some();
        seen.push(Table { oid: table.oid, kind: now.kind.unwrap_or(Kind::Catalog), triggers: now.triggers });
    }
    // The signal tables, and their names to watch (a table's DDL, as creating the extension
    // is, and a signal table's name changing hands have this backend look again).
    // SAFETY: a syscache lookup.
    let namespace = unsafe { pg_sys::get_func_namespace(NOTE_CHANGE.get()) };
    if namespace != pg_sys::InvalidOid {
        SIGNAL_NAMES.set(SIGNALS.map(|(_, name)| relation_name_hash(name, namespace)));
        for (kind, _) in SIGNALS {
            let Some(oid) = signal_in(kind, namespace) else { continue };
            SIGNAL_TABLES.with_borrow_mut(|found| {
                if !found.contains(&(oid, kind)) {
                    found.push((oid, kind));
                }
            });
        }
    }
    TABLES.set(seen);
    Some(sound)
}

struct Inspected {
    kind: Option<Kind>,
    sound: bool,
    triggers: Vec<(Oid, u32)>,
}

/// The given triggers of a table, each with the transaction that last wrote its pg_trigger
/// row (0 for one not found).
fn trigger_row_writers(table: Oid, triggers: &[Oid]) -> Vec<(Oid, u32)> {
    let mut found: Vec<(Oid, u32)> = triggers.iter().map(|t| (*t, 0)).collect();
    // SAFETY: a catalog index scan as PostgreSQL's own code does it (RelationBuildTriggers):
    // pg_trigger by (tgrelid), under the catalog snapshot; the tuples are read in the scan.
    unsafe {
        let catalog = pg_sys::table_open(pg_sys::TriggerRelationId, pg_sys::AccessShareLock as i32);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_trigger_tgrelid as i16,
            pg_sys::BTEqualStrategyNumber as u16,
            pg_sys::F_OIDEQ.into(),
            Datum::from(table),
        );
        let scan = pg_sys::systable_beginscan(
            catalog,
            pg_sys::Oid::from(pg_sys::TriggerRelidNameIndexId),
            true,
            std::ptr::null_mut(),
            1,
            &mut key,
        );
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::GETSTRUCT(tuple).cast::<pg_sys::FormData_pg_trigger>();
            if let Some(entry) = found.iter_mut().find(|(oid, _)| *oid == (*form).oid) {
                entry.1 = (*(*tuple).t_data).t_choice.t_heap.t_xmin.into_inner();
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as i32);
    }
    found
}

/// What the note_change triggers of one table say; None if the table is gone.
fn inspect(oid: Oid) -> Option<Inspected> {
    let note_change = NOTE_CHANGE.get();
    // SAFETY: opened and closed here; the lock is kept to the end of the transaction, as
    // the executor does; trigdesc is valid while the relation is open.
    unsafe {
        let rel = pg_sys::try_table_open(oid, pg_sys::AccessShareLock as i32);
        if rel.is_null() {
            return None;
        }
        let (mut statement, mut row, mut kinds, mut oids) = (false, false, Vec::new(), Vec::new());
        let trigdesc = (*rel).trigdesc;
        let triggers = match trigdesc.is_null() {
            true => &[][..],
            false => std::slice::from_raw_parts((*trigdesc).triggers, (*trigdesc).numtriggers as usize),
        };
        for trigger in triggers.iter().filter(|t| t.tgfoid == note_change) {
            oids.push(trigger.tgoid);
            let for_each_row = trigger.tgtype as u32 & pg_sys::TRIGGER_TYPE_ROW != 0;
            let enabled = trigger.tgenabled as u8;
            // Both must fire in every mode: the row trigger names the changed users, and is
            // what logical replication's apply fires (no statement triggers but TRUNCATE's).
            statement |= !for_each_row && enabled == pg_sys::TRIGGER_FIRES_ALWAYS;
            row |= for_each_row && enabled == pg_sys::TRIGGER_FIRES_ALWAYS;
            kinds.push(Kind::of(trigger));
        }
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        let kind = kinds.first().copied().flatten();
        let agreed = kind.is_some() && kinds.iter().all(|k| *k == kind);
        let mut triggers = trigger_row_writers(oid, &oids);
        triggers.sort_by_key(|(o, _)| o.to_u32());
        Some(Inspected { kind, sound: statement && row && agreed, triggers })
    }
}
