//! Turns `core::error::Error` into a PostgreSQL ERROR with its SQLSTATE and hint.

use crate::core::error::Error;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub fn raise(err: Error) -> ! {
    let code = match err.sqlstate() {
        "22023" => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        "22004" => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        "42501" => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "28000" => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        "42704" => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        "42703" => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        "54001" => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
        other => unreachable!("no PostgreSQL error code mapped for SQLSTATE {other}"),
    };
    let mut report = ErrorReport::new(code, err.to_string(), "authz_ext");
    if let Some(hint) = err.hint() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// `value.or_raise()`: the value, or the error reported to the client.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|err| raise(err))
    }
}
