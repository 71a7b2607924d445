//! The pure core: rules and formats with no PostgreSQL types, unit-tested with plain
//! `cargo test`. The `pg` module is the glue that feeds it from the database.

pub mod cache;
pub mod context;
pub mod error;
pub mod fga;
pub mod heap;
pub mod ids;
pub mod keys;
pub mod misses;
pub mod permission;
pub mod resolve;
pub mod ring;
pub mod slots;
pub mod token;
