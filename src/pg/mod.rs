//! The PostgreSQL layer: argument decoding, error reporting, table access as the
//! extension owner, and the SQL-callable functions declared in sql/api.sql.

mod admin;
mod checks;
mod fresh;
pub mod gucs;
mod ids;
mod keys;
mod owner;
mod report;
mod subxact;
