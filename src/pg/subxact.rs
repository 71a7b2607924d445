//! Work that may fail without failing the caller, as a PL/pgSQL EXCEPTION block does it:
//! in an internal subtransaction that is rolled back on error.

use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::panic::AssertUnwindSafe;

/// Runs `work` in a subtransaction; true if it committed. An error inside is rolled back
/// and dropped, except a cancel or shutdown request, which is raised again after the
/// rollback (swallowing it would lose the request).
pub fn attempt(work: impl FnOnce()) -> bool {
    // SAFETY: the sequence of PL/pgSQL's exec_stmt_block: start a subtransaction, stay in
    // the caller's memory context, and on the way out restore context and resource owner.
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let work = AssertUnwindSafe(work);
        let failure = PgTryBuilder::new(move || {
            let work = work; // the whole AssertUnwindSafe, not just its field
            (work.0)();
            None
        })
        .catch_others(Some)
        .execute();
        if failure.is_none() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        match failure {
            None => true,
            Some(error) if must_propagate(&error) => error.rethrow(),
            Some(error) => {
                pgrx::debug1!("authz_ext: optional work rolled back: {}", message(&error));
                false
            }
        }
    }
}

fn message(error: &CaughtError) -> &str {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.message(),
        CaughtError::RustPanic { ereport, .. } => ereport.message(),
    }
}

fn must_propagate(error: &CaughtError) -> bool {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => matches!(
            report.sql_error_code(),
            PgSqlErrorCode::ERRCODE_QUERY_CANCELED
                | PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN
                | PgSqlErrorCode::ERRCODE_CRASH_SHUTDOWN
        ),
        // A bug of ours: never hide it.
        CaughtError::RustPanic { .. } => true,
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::attempt;
    use pgrx::prelude::*;

    #[pg_test]
    fn a_failed_attempt_is_rolled_back_and_the_transaction_goes_on() {
        Spi::run("CREATE TEMP TABLE attempts (n int)").unwrap();
        assert!(attempt(|| Spi::run("INSERT INTO attempts VALUES (1)").unwrap()));
        let failed = attempt(|| {
            Spi::run("INSERT INTO attempts VALUES (2)").unwrap();
            Spi::run("SELECT 1 / 0").unwrap();
        });
        assert!(!failed);
        let rows = Spi::get_one::<String>("SELECT string_agg(n::text, ',') FROM attempts").unwrap();
        assert_eq!(rows.as_deref(), Some("1"));
    }
}
