//! Observability: this backend's counters and memory (`authz_stats()`), and log lines for
//! denials (`authz.log_denials`). Counters are plain thread-locals: a check pays one
//! increment.

use crate::pg::local::Local;
use crate::core::keys::Status;
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use std::cell::Cell;

#[derive(Clone, Copy)]
pub enum Counter {
    Allows,
    Denies,
    CacheHits,
    CacheMisses,
    CacheBypasses,
    Invalidations,
    KeysValid,
    KeysMalformed,
    KeysUnknown,
    KeysExpired,
    KeysRevoked,
    KeyReads,
    KeySharedHits,
}

const COUNTERS: usize = 13;

/// What each counter means, in `authz_stats()`'s order.
const NAMES: [(&str, &str); COUNTERS] = [
    ("allows", "checks that allowed"),
    ("denies", "checks that denied (a NULL user or permission, or an error, is not counted)"),
    ("cache_hits", "checks answered from the decision cache"),
    ("cache_misses", "checks whose user and permission were not cached (read from the tables)"),
    ("cache_bypasses", "checks in statements where the cache could not be trusted or is off"),
    ("invalidations", "times the cached users were flushed by a change"),
    ("keys_valid", "key validations (api_key_validate, authz_authenticate) by status: valid"),
    ("keys_malformed", "... malformed"),
    ("keys_unknown", "... unknown"),
    ("keys_expired", "... expired"),
    ("keys_revoked", "... revoked"),
    ("cache_key_reads", "validations that read their key from the tables (not remembered by this backend or shared memory)"),
    ("cache_key_shared_hits", "validations that found their key in the keys every backend shares (authz.shared_key_memory)"),
];

static COUNTS: Local<[Cell<i64>; COUNTERS]> = Local::new([const { Cell::new(0) }; COUNTERS]);

pub fn bump(counter: Counter) {
    let cell = &COUNTS[counter as usize];
    cell.set(cell.get() + 1);
}

/// Bumps several counters at once (one look-up of the counters, for the per-row path).
pub fn bump_all<const N: usize>(counters: [Counter; N]) {
    for counter in counters {
        let cell = &COUNTS[counter as usize];
        cell.set(cell.get() + 1);
    }
}

pub fn key_validated(status: Status) {
    bump(match status {
        Status::Valid => Counter::KeysValid,
        Status::Malformed => Counter::KeysMalformed,
        Status::Unknown => Counter::KeysUnknown,
        Status::Expired => Counter::KeysExpired,
        Status::Revoked => Counter::KeysRevoked,
    });
}

#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn authz_stats() -> TableIterator<'static, (name!(counter, String), name!(value, i64), name!(description, String))> {
    let values: Vec<i64> = COUNTS.iter().map(Cell::get).collect();
    let checks = values[Counter::Allows as usize] + values[Counter::Denies as usize];
    let gauges = [
        ("cache_bytes", super::cache::bytes(), "memory the decision cache holds now (estimated; bounded by authz.cache_memory)"),
        ("heap_bytes", crate::heap_bytes(), "memory authz_ext's own code holds now in this backend, measured (the cache included)"),
    ];
    let rows = std::iter::once(("checks", checks, "permission checks answered since the backend started"))
        .chain(NAMES.iter().zip(values).map(|((name, what), value)| (*name, value, *what)))
        .chain(gauges.map(|(name, bytes, what)| (name, i64::try_from(bytes).unwrap_or(i64::MAX), what)))
        .map(|(name, value, what)| (name.to_string(), value, what.to_string()))
        .collect::<Vec<_>>();
    TableIterator::new(rows)
}

/// `authz.log_denials`: the level at which denials of `authz_require` and
/// `authz_authenticate` are logged.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DenialLogLevel {
    #[name = c"off"]
    Off,
    #[name = c"debug"]
    Debug,
    #[name = c"info"]
    Info,
    #[name = c"notice"]
    Notice,
    #[name = c"warning"]
    Warning,
    #[name = c"log"]
    Log,
}

static LOG_DENIALS: GucSetting<DenialLogLevel> = GucSetting::<DenialLogLevel>::new(DenialLogLevel::Off);

pub fn register() {
    GucRegistry::define_enum_guc(
        c"authz.log_denials",
        c"Log level for denials by authz_require and rejections by authz_authenticate (off, debug, info, notice, warning, log).",
        c"The line names the user, permission and resource, or the key's status; never a token.",
        &LOG_DENIALS,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// Logs a denial at the configured level (the caller then raises its error).
pub fn log_denial(message: &str) {
    match LOG_DENIALS.get() {
        DenialLogLevel::Off => {}
        DenialLogLevel::Debug => debug1!("authz_ext: {message}"),
        DenialLogLevel::Info => info!("authz_ext: {message}"),
        DenialLogLevel::Notice => notice!("authz_ext: {message}"),
        DenialLogLevel::Warning => warning!("authz_ext: {message}"),
        DenialLogLevel::Log => log!("authz_ext: {message}"),
    }
}
