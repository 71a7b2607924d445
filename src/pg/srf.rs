//! Set-returning functions in materialize mode: the function fills the executor's
//! tuplestore in one call, instead of being called once per row through pgrx's
//! `TableIterator` (a memory context, a result-type lookup and a guarded call per row —
//! about 2 µs for a one-row result, more than the index lookup `api_key_validate` makes).

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// The call's result, being filled.
pub(super) struct Rows {
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
}

impl Rows {
    /// Starts the result of the call `fcinfo`, whose rows have the columns `desc` makes
    /// (in the current memory context; the executor checks them against the function's
    /// declaration, and frees them). Raises when the caller cannot take a materialized set.
    pub(super) fn begin(fcinfo: pg_sys::FunctionCallInfo, desc: impl FnOnce(&pg_sys::ReturnSetInfo) -> pg_sys::TupleDesc) -> Rows {
        // SAFETY: fcinfo is the call's own; resultinfo, when it is a ReturnSetInfo, is the
        // executor's, and the tuplestore and its descriptor live in its per-query context,
        // as the set-returning functions of PostgreSQL's own (InitMaterializedSRF) do.
        unsafe {
            let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
            if rsinfo.is_null()
                || (*rsinfo).type_ != pg_sys::NodeTag::T_ReturnSetInfo
                || (*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32 == 0
            {
                ereport!(ERROR, PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, "set-valued function called in context that cannot accept a set");
            }
            let caller = pg_sys::MemoryContextSwitchTo((*(*rsinfo).econtext).ecxt_per_query_memory);
            let desc = desc(&*rsinfo);
            let random = (*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32 != 0;
            let store = pg_sys::tuplestore_begin_heap(random, false, pg_sys::work_mem);
            pg_sys::MemoryContextSwitchTo(caller);
            (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
            (*rsinfo).setResult = store;
            (*rsinfo).setDesc = desc;
            Rows { store, desc }
        }
    }

    /// Adds a row: one value per column of the descriptor, of its type (the tuplestore
    /// copies them).
    pub(super) fn put(&mut self, values: &mut [pg_sys::Datum], nulls: &mut [bool]) {
        // SAFETY: the store and descriptor are begin's; the caller passes a value of each
        // column's type, natts of them.
        unsafe {
            assert!(values.len() == (*self.desc).natts as usize && nulls.len() == values.len());
            pg_sys::tuplestore_putvalues(self.store, self.desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        }
    }
}

/// A descriptor of one text column.
pub(super) fn one_text_column() -> pg_sys::TupleDesc {
    // SAFETY: plain allocation in the current memory context.
    unsafe {
        let desc = pg_sys::CreateTemplateTupleDesc(1);
        pg_sys::TupleDescInitEntry(desc, 1, c"value".as_ptr(), pg_sys::TEXTOID, -1, 0);
        desc
    }
}

/// A copy of the row type the caller expects, if it is the one the function returns (its
/// column types are `types`); otherwise the error PostgreSQL raises for a mismatch. The
/// executor passes the function's declared row type (no lookup per call).
pub(super) fn expected(rsinfo: &pg_sys::ReturnSetInfo, types: &[pg_sys::Oid]) -> pg_sys::TupleDesc {
    // SAFETY: expectedDesc, when set, is a valid descriptor of the executor's.
    unsafe {
        let expected = rsinfo.expectedDesc;
        let matches = !expected.is_null() && {
            let columns = pgrx::PgTupleDesc::from_pg_unchecked(expected);
            columns.len() == types.len()
                && types.iter().enumerate().all(|(i, t)| columns.get(i).is_some_and(|c| !c.attisdropped && c.atttypid == *t))
        };
        if !matches {
            ereport!(ERROR, PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, "function return row and query-specified return row do not match");
        }
        pg_sys::CreateTupleDescCopy(expected)
    }
}
