//! Read-only queries for checks, under a snapshot fresh enough for DESIGN.md section 4:
//! authorization reads the latest committed state (plus the transaction's own changes),
//! never an older snapshot kept by REPEATABLE READ or SERIALIZABLE.
//!
//! In READ COMMITTED the statement's snapshot already sees every commit made before the
//! statement began, so it is used as is. Under the transaction-snapshot levels a newer
//! snapshot is pushed for the query. (Inside a parallel query PostgreSQL forbids taking
//! one; there the statement's snapshot is used; see the README's "Freshness" notes.)

use pgrx::prelude::*;
use pgrx::pg_sys::{self, Datum, Oid};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

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
pub fn query<R>(statement: &'static Statement, args: &[Option<Datum>], mut read: impl FnMut(&Row) -> R) -> Vec<R> {
    assert_eq!(args.len(), statement.arg_types.len());
    Spi::connect(|_client| unsafe {
        let plan = plan_for(statement);
        let mut values: Vec<Datum> = args.iter().map(|a| a.unwrap_or(Datum::from(0))).collect();
        let nulls: Vec<std::ffi::c_char> =
            args.iter().map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
        let pushed = push_fresh_snapshot();
        // read_only = true: run under the active snapshot chosen above.
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), true, 0);
        if pushed {
            pg_sys::PopActiveSnapshot();
        }
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

/// Pushes the snapshot the query must use, if the active one will not do. Returns whether
/// it pushed one (and so must pop it).
unsafe fn push_fresh_snapshot() -> bool {
    let transaction_snapshot = pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32;
    if transaction_snapshot && !pg_sys::IsInParallelMode() {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        true
    } else if !pg_sys::ActiveSnapshotSet() {
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        true
    } else {
        false
    }
}
