//! The PostgreSQL layer: argument decoding, error reporting, table access as the
//! extension owner, and the SQL-callable functions declared in sql/api.sql.

mod admin;
mod args;
mod cache;
mod checks;
mod clock;
mod context;
mod gucs;
mod ids;
mod keys;
mod latest;
mod local;
mod owner;
mod relationships;
mod report;
mod srf;
mod stats;
mod subxact;

/// What the library sets up when it is loaded: its settings, callbacks and shared memory.
pub fn register() {
    gucs::register();
    stats::register();
    context::register_callbacks();
    cache::register();
    latest::register();
    relationships::register();
    gucs::reserve_prefix();
}
