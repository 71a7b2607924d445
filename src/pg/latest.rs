//! Read-only queries for checks, under a snapshot fresh enough for the freshness promise
//! (docs/guide.md, Freshness): authorization reads the latest committed state (plus the
//! transaction's own changes), never an older snapshot kept by REPEATABLE READ or
//! SERIALIZABLE.
//!
//! Every read takes the latest snapshot, in every isolation level: it sees every commit
//! made before the check's statement began (and any made since), and the transaction's
//! own changes up to the current command, including those made earlier in the same
//! statement. The decision cache is filled the same way, so answers match with it on or
//! off. Inside a parallel query, where PostgreSQL's own latest snapshot is off limits, a
//! snapshot of our own is taken the same way.
//!
//! Two ways to read: `query` runs a prepared SQL statement through SPI; a `Reader`
//! reads tables through their indexes directly, without the executor, for the
//! hottest paths (SPI's per-call executor start-up costs several times the lookup itself).

use pgrx::prelude::*;
use pgrx::pg_sys::{self, Datum, Oid};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

/// A fixed query and its parameter types; prepared once per backend.
pub struct Statement {
    pub sql: &'static CStr,
    pub arg_types: &'static [Oid],
}

/// One result row, valid while the query's SPI connection is open.
pub struct Row {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl Row {
    /// Column `n` (1-based), converted into an owned Rust value.
    pub fn get<T: FromDatum>(&self, n: i32) -> Option<T> {
        let mut is_null = false;
        // SAFETY: tuple and desc come from SPI_tuptable of the open connection.
        unsafe {
            let datum = pg_sys::SPI_getbinval(self.tuple, self.desc, n, &mut is_null);
            T::from_datum(datum, is_null)
        }
    }
}

thread_local! {
    static PLANS: RefCell<HashMap<usize, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

/// Runs `statement` with `args` (None is NULL) and maps each row with `read`.
pub fn query<R>(
    statement: &'static Statement,
    args: &[Option<Datum>],
    mut read: impl FnMut(&Row) -> R,
) -> Vec<R> {
    assert_eq!(args.len(), statement.arg_types.len());
    Spi::connect(|_client| unsafe {
        // Never JIT-compile these: their plans are cached but JIT code is not, and one
        // compile (tens of ms) costs far more than the query — yet a large catalog's plan
        // crosses jit_above_cost. JIT is decided when a plan is made (or remade after an
        // invalidation), which happens below, so jit is off for this scope (undone by
        // AtEOXact_GUC, or by the abort on error, as for a function's SET clause).
        let guc_level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"jit".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let plan = plan_for(statement);
        let mut values: Vec<Datum> = args.iter().map(|a| a.unwrap_or(Datum::from(0))).collect();
        let nulls: Vec<std::ffi::c_char> =
            args.iter().map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
        let snapshot = latest_snapshot();
        let pushed = !pg_sys::ActiveSnapshotSet() || snapshot != pg_sys::GetActiveSnapshot();
        if pushed {
            pg_sys::PushActiveSnapshot(snapshot);
        }
        // read_only = true: run under the active snapshot chosen above.
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), true, 0);
        if pushed {
            pg_sys::PopActiveSnapshot();
        }
        pg_sys::AtEOXact_GUC(true, guc_level);
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            pgrx::error!("authz_ext internal query failed: SPI code {rc}");
        }
        let table = pg_sys::SPI_tuptable;
        (0..pg_sys::SPI_processed as usize)
            .map(|i| read(&Row { tuple: *(*table).vals.add(i), desc: (*table).tupdesc }))
            .collect()
    })
}

unsafe fn plan_for(statement: &'static Statement) -> pg_sys::SPIPlanPtr {
    let key = statement as *const Statement as usize;
    if let Some(plan) = PLANS.with(|p| p.borrow().get(&key).copied()) {
        return plan;
    }
    // A generic plan: custom plans would re-plan the (inlined) query on every call.
    let plan = pg_sys::SPI_prepare_cursor(
        statement.sql.as_ptr(),
        statement.arg_types.len() as i32,
        statement.arg_types.as_ptr().cast_mut(),
        pg_sys::CURSOR_OPT_GENERIC_PLAN as i32,
    );
    if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
        pgrx::error!("authz_ext could not prepare an internal query");
    }
    PLANS.with(|p| p.borrow_mut().insert(key, plan));
    plan
}

/// The snapshot a read must use: the latest one.
unsafe fn latest_snapshot() -> pg_sys::Snapshot {
    if !pg_sys::IsInParallelMode() {
        return pg_sys::GetLatestSnapshot();
    }
    // GetLatestSnapshot refuses to update PostgreSQL's secondary snapshot in parallel mode
    // (workers share the leader's snapshots). A check runs in the leader (PARALLEL
    // RESTRICTED) and reads only authz tables, so it takes one of its own, as
    // GetTransactionSnapshot does in parallel mode under READ COMMITTED; the callers copy
    // it (RegisterSnapshot, PushActiveSnapshot) before the next call overwrites it.
    static mut OWN: pg_sys::SnapshotData = unsafe { std::mem::zeroed() };
    let own = &raw mut OWN;
    (*own).snapshot_type = pg_sys::SnapshotType::SNAPSHOT_MVCC;
    pg_sys::GetSnapshotData(own)
}

/// A condition on one column of an index: its B-tree strategy (equality unless said), the
/// comparison function (`F_*` of pg_sys) and the value. A lookup's keys match the index's
/// leading columns, in order.
#[derive(Clone, Copy)]
pub struct IndexKey {
    pub strategy: u32,
    pub procedure: u32,
    pub value: Datum,
}

impl IndexKey {
    /// Equality, by the comparison function `procedure`.
    pub fn equal(procedure: u32, value: Datum) -> Self {
        IndexKey { strategy: pg_sys::BTEqualStrategyNumber, procedure, value }
    }

    /// Equality on a text column.
    pub fn text(s: &str) -> Self {
        Self::equal(pg_sys::F_TEXTEQ, s.into_datum().expect("a text datum"))
    }

    /// Any value of a text column (`>= ''`): a lookup by the leading columns of a scan opened
    /// for more of them.
    pub fn any_text() -> Self {
        IndexKey { strategy: pg_sys::BTGreaterEqualStrategyNumber, procedure: pg_sys::F_TEXT_GE, value: "".into_datum().expect("a text datum") }
    }
}

/// Direct index reads of the extension's own tables, all under one snapshot (the one
/// `query` would take). No privilege is checked: callers read only `authz` tables.
pub struct Reader {
    snapshot: pg_sys::Snapshot,
}

impl Reader {
    pub fn new() -> Self {
        // SAFETY: registered here, unregistered by Drop (or by the resource owner on error).
        Reader { snapshot: unsafe { pg_sys::RegisterSnapshot(latest_snapshot()) } }
    }

    /// Reads the rows of `authz.<table>` found through `authz.<index>` by `keys` (at most
    /// `limit`), and hands `read` the values of `columns` (None for NULL), valid during the
    /// call only.
    pub fn lookup<R>(
        &self,
        relations: (&'static CStr, &'static CStr),
        keys: &[IndexKey],
        columns: &[&'static CStr],
        limit: Option<usize>,
        read: impl FnMut(&[Option<Datum>]) -> R,
    ) -> Vec<R> {
        self.scan(relations, keys, columns, limit, pg_sys::ScanDirection::ForwardScanDirection, read)
    }

    /// The last row of `authz.<table>` in the order of `authz.<index>`, as `lookup` reads one.
    pub fn last<R>(
        &self,
        relations: (&'static CStr, &'static CStr),
        columns: &[&'static CStr],
        read: impl FnMut(&[Option<Datum>]) -> R,
    ) -> Option<R> {
        self.scan(relations, &[], columns, Some(1), pg_sys::ScanDirection::BackwardScanDirection, read).pop()
    }

    fn scan<R>(
        &self,
        relations: (&'static CStr, &'static CStr),
        keys: &[IndexKey],
        columns: &[&'static CStr],
        limit: Option<usize>,
        direction: pg_sys::ScanDirection::Type,
        read: impl FnMut(&[Option<Datum>]) -> R,
    ) -> Vec<R> {
        // SAFETY: the scan is closed below, before this Reader's snapshot can go.
        let mut scan = unsafe { IndexScan::open(self.snapshot, relations, keys.len(), columns) };
        scan.fetch(keys, limit, direction, read)
    }

    /// An index scan kept open for many lookups with `nkeys` keys (IndexScan::fetch):
    /// opening relations and a scan costs more than a lookup.
    pub fn open(self: &Rc<Self>, relations: (&'static CStr, &'static CStr), nkeys: usize, columns: &[&'static CStr]) -> OpenScan {
        // SAFETY: OpenScan holds the Reader, and so its snapshot, until the scan is closed.
        OpenScan { scan: unsafe { IndexScan::open(self.snapshot, relations, nkeys, columns) }, _reader: self.clone() }
    }
}

/// An open scan of an authz table through one of its indexes (the open/scan/close sequence
/// of systable_beginscan); closed when dropped. Relations and buffer pins belong to the
/// resource owner, so an ERROR in between releases them.
struct IndexScan {
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    scan: pg_sys::IndexScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    attnums: Vec<i32>,
    nkeys: usize,
    /// When the index holds every column asked for: their positions in its rows, which are
    /// then read from the index (an index-only scan), and the visibility map page in use.
    index_only: Option<Vec<usize>>,
    vm_buffer: pg_sys::Buffer,
}

impl IndexScan {
    /// # Safety
    /// `snapshot` must stay registered until the scan is dropped.
    unsafe fn open(snapshot: pg_sys::Snapshot, (table, index): (&'static CStr, &'static CStr), nkeys: usize, columns: &[&'static CStr]) -> Self {
        let heap = pg_sys::table_open(relation_oid(table), pg_sys::AccessShareLock as i32);
        let index_rel = pg_sys::index_open(relation_oid(index), pg_sys::AccessShareLock as i32);
        let attnums: Vec<i32> = columns.iter().map(|c| attnum((*heap).rd_id, table, c)).collect();
        let scan = begin_index_scan(heap, index_rel, snapshot, nkeys as i32);
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let index_only = index_positions(index_rel, &attnums);
        (*scan).xs_want_itup = index_only.is_some();
        IndexScan { heap, index: index_rel, scan, slot, attnums, nkeys, index_only, vm_buffer: pg_sys::InvalidBuffer as pg_sys::Buffer }
    }

    /// The next row's values of the columns asked for, or None at the end of the scan.
    /// An index-only scan reads them from the index entry, and visits the table only when
    /// the visibility map does not say the entry's page is visible to every snapshot, as
    /// PostgreSQL's own index-only scans do (nodeIndexonlyscan.c).
    unsafe fn next(&mut self, direction: pg_sys::ScanDirection::Type, values: &mut Vec<Option<Datum>>) -> bool {
        values.clear();
        let Some(positions) = &self.index_only else {
            if !pg_sys::index_getnext_slot(self.scan, direction, self.slot) {
                return false;
            }
            for &attnum in &self.attnums {
                let mut is_null = false;
                let datum = match attnum > 0 {
                    true => pg_sys::slot_getattr(self.slot, attnum, &mut is_null),
                    false => pg_sys::slot_getsysattr(self.slot, attnum, &mut is_null), // xmin, ctid, ...
                };
                values.push((!is_null).then_some(datum));
            }
            return true;
        };
        loop {
            let tid = pg_sys::index_getnext_tid(self.scan, direction);
            if tid.is_null() {
                return false;
            }
            let block = pgrx::itemptr::item_pointer_get_block_number_no_check(*tid);
            let all_visible = pg_sys::visibilitymap_get_status(self.heap, block, &mut self.vm_buffer) as u32
                & pg_sys::VISIBILITYMAP_ALL_VISIBLE
                != 0;
            if !all_visible && !pg_sys::index_fetch_heap(self.scan, self.slot) {
                continue; // no version visible to the snapshot
            }
            let mut datums = [Datum::from(0); pg_sys::INDEX_MAX_KEYS as usize];
            let mut nulls = [false; pg_sys::INDEX_MAX_KEYS as usize];
            pg_sys::index_deform_tuple((*self.scan).xs_itup, (*self.scan).xs_itupdesc, datums.as_mut_ptr(), nulls.as_mut_ptr());
            values.extend(positions.iter().map(|&i| (!nulls[i]).then_some(datums[i])));
            return true;
        }
    }

    /// The rows `keys` (on the index's leading columns, as many as the scan was opened for)
    /// find, at most `limit`, each read as `Reader::lookup` reads them.
    fn fetch<R>(
        &mut self,
        keys: &[IndexKey],
        limit: Option<usize>,
        direction: pg_sys::ScanDirection::Type,
        mut read: impl FnMut(&[Option<Datum>]) -> R,
    ) -> Vec<R> {
        assert_eq!(keys.len(), self.nkeys, "a scan is rescanned with the number of keys it was opened for");
        // SAFETY: the relations, scan and slot are open (open); rescanning is how an index
        // scan takes new keys.
        unsafe {
            let mut scan_keys: Vec<pg_sys::ScanKeyData> = keys
                .iter()
                .enumerate()
                .map(|(i, key)| {
                    let mut scan_key: pg_sys::ScanKeyData = std::mem::zeroed();
                    // The index's own collation: text indexes are ordered by it.
                    let collation = *(*self.index).rd_indcollation.add(i);
                    pg_sys::ScanKeyEntryInitialize(
                        &mut scan_key,
                        0,
                        i as i16 + 1,
                        key.strategy as u16,
                        pg_sys::InvalidOid,
                        collation,
                        Oid::from(key.procedure),
                        key.value,
                    );
                    scan_key
                })
                .collect();
            pg_sys::index_rescan(self.scan, scan_keys.as_mut_ptr(), keys.len() as i32, std::ptr::null_mut(), 0);
            let mut found = Vec::new();
            let mut values = Vec::with_capacity(self.attnums.len());
            while limit.is_none_or(|l| found.len() < l) && self.next(direction, &mut values) {
                found.push(read(&values));
            }
            found
        }
    }
}

impl Drop for IndexScan {
    fn drop(&mut self) {
        // SAFETY: opened in open(); locks are kept to the end of the transaction, as the
        // executor does.
        unsafe {
            if self.vm_buffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
                pg_sys::ReleaseBuffer(self.vm_buffer);
            }
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::index_endscan(self.scan);
            pg_sys::index_close(self.index, pg_sys::NoLock as i32);
            pg_sys::table_close(self.heap, pg_sys::NoLock as i32);
        }
    }
}

/// An index scan kept open for many lookups (Reader::open), with the Reader whose snapshot
/// it reads under.
pub struct OpenScan {
    scan: IndexScan,
    _reader: Rc<Reader>,
}

impl OpenScan {
    /// As `Reader::lookup`, with the keys this scan was opened for.
    pub fn lookup<R>(&mut self, keys: &[IndexKey], limit: Option<usize>, read: impl FnMut(&[Option<Datum>]) -> R) -> Vec<R> {
        self.scan.fetch(keys, limit, pg_sys::ScanDirection::ForwardScanDirection, read)
    }
}

/// A value `Reader::lookup` handed over, as `T` (the column's type).
pub fn value<T: FromDatum>(datum: Option<Datum>) -> Option<T> {
    // SAFETY: lookup passes live datums of the columns it was asked for.
    datum.and_then(|d| unsafe { T::from_datum(d, false) })
}

/// A text value `Reader::lookup` handed over, as its bytes: read in place when it is stored
/// inline and uncompressed, as short values in index entries and table rows are (no
/// detoasting call per value: the hot loops of the relationship walks).
pub fn text_bytes<'a>(datum: Option<Datum>) -> Option<&'a [u8]> {
    use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, vardata_any, varsize_any_exhdr};
    let ptr = datum?.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: lookup passes live datums of text columns; an inline uncompressed varlena's
    // bytes follow its header, and a detoasted copy lives as long as the call's memory.
    unsafe {
        let plain = match varatt_is_1b_e(ptr) || varatt_is_4b_c(ptr) {
            true => pg_sys::pg_detoast_datum_packed(ptr),
            false => ptr,
        };
        Some(std::slice::from_raw_parts(vardata_any(plain).cast::<u8>(), varsize_any_exhdr(plain)))
    }
}

/// Whether a text value `Reader::lookup` handed over is `expected` (NULL is not).
pub fn text_is(datum: Option<Datum>, expected: &str) -> bool {
    text_bytes(datum).is_some_and(|bytes| crate::core::ids::same_bytes(bytes, expected.as_bytes()))
}

/// A text value as `value::<&str>` gives it, by `text_bytes`.
pub fn text<'a>(datum: Option<Datum>) -> Option<&'a str> {
    // Not UTF-8 (a database of another encoding): as value::<&str> reports it.
    text_bytes(datum).and_then(|bytes| std::str::from_utf8(bytes).ok().or_else(|| value(datum)))
}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: registered in new().
        unsafe { pg_sys::UnregisterSnapshot(self.snapshot) }
    }
}

thread_local! {
    /// The OIDs of authz relations by name, and their columns' numbers by (relation, name),
    /// resolved once: the catalog lookups cost more than a read. Names are the callers'
    /// static strings, keyed by address. Forgotten when one of the relations is
    /// invalidated (dropped, altered).
    static RELATIONS: RefCell<HashMap<usize, Oid>> = RefCell::new(HashMap::new());
    static COLUMNS: RefCell<HashMap<(Oid, usize), i32>> = RefCell::new(HashMap::new());
}

/// Registers the callback that forgets resolved names; at library load.
pub fn register() {
    // SAFETY: called once, from _PG_init.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget_names), Datum::from(0)) };
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn forget_names(_arg: Datum, relid: Oid) {
    let ours = RELATIONS.with_borrow(|r| relid == pg_sys::InvalidOid || r.values().any(|&oid| oid == relid));
    if ours {
        RELATIONS.with_borrow_mut(HashMap::clear);
        COLUMNS.with_borrow_mut(HashMap::clear);
    }
}

/// The OID of `authz.<name>` (resolved once; an ERROR if it is missing).
pub fn table_oid(name: &'static CStr) -> Oid {
    // SAFETY: catalog lookups, inside a transaction (callers are SQL functions).
    unsafe { relation_oid(name) }
}

unsafe fn relation_oid(name: &'static CStr) -> Oid {
    if let Some(oid) = RELATIONS.with_borrow(|r| r.get(&(name.as_ptr() as usize)).copied()) {
        return oid;
    }
    let schema = pg_sys::get_namespace_oid(c"authz".as_ptr(), false);
    match pg_sys::get_relname_relid(name.as_ptr(), schema) {
        oid if oid == pg_sys::InvalidOid => pgrx::error!("authz_ext: relation authz.{} is missing", name.to_string_lossy()),
        oid => {
            RELATIONS.with_borrow_mut(|r| r.insert(name.as_ptr() as usize, oid));
            oid
        }
    }
}

unsafe fn attnum(heap: Oid, table: &CStr, column: &'static CStr) -> i32 {
    let key = (heap, column.as_ptr() as usize);
    if let Some(n) = COLUMNS.with_borrow(|c| c.get(&key).copied()) {
        return n;
    }
    match pg_sys::get_attnum(heap, column.as_ptr()) {
        0 => pgrx::error!("authz_ext: column {} of authz.{} is missing", column.to_string_lossy(), table.to_string_lossy()),
        n => {
            COLUMNS.with_borrow_mut(|c| c.insert(key, i32::from(n)));
            i32::from(n)
        }
    }
}

/// The positions in `index`'s rows (key and INCLUDE columns) of the table's columns
/// `attnums`, if it holds them all.
unsafe fn index_positions(index: pg_sys::Relation, attnums: &[i32]) -> Option<Vec<usize>> {
    let form = (*index).rd_index;
    let indexed = (*form).indkey.values.as_slice((*form).indnatts as usize);
    attnums.iter().map(|&a| indexed.iter().position(|&i| i32::from(i) == a)).collect()
}

#[cfg(not(feature = "pg18"))]
unsafe fn begin_index_scan(heap: pg_sys::Relation, index: pg_sys::Relation, snapshot: pg_sys::Snapshot, keys: i32) -> pg_sys::IndexScanDesc {
    pg_sys::index_beginscan(heap, index, snapshot, keys, 0)
}

// PostgreSQL 18 added an instrumentation argument.
#[cfg(feature = "pg18")]
unsafe fn begin_index_scan(heap: pg_sys::Relation, index: pg_sys::Relation, snapshot: pg_sys::Snapshot, keys: i32) -> pg_sys::IndexScanDesc {
    pg_sys::index_beginscan(heap, index, snapshot, std::ptr::null_mut(), keys, 0)
}
