//! The extension's settings, registered when the library loads.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Seconds between two writes of a key's `last_used_at` by `api_key_validate`.
pub static KEY_LAST_USED_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);

/// Whether checks use the backend-local decision cache.
static CACHE_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// authz.cache, read without pgrx's thread check (`GucSetting::get` asks for the thread's
/// id, a thread-local: `__tls_get_addr` on every row of a per-row check; see local.rs).
pub fn cache_enabled() -> bool {
    // SAFETY: PostgreSQL writes the setting on this backend's one thread, between calls.
    unsafe { *CACHE_ENABLED.as_ptr() }
}

/// The decision cache's budget per backend, in kB.
pub static CACHE_MEMORY_KB: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);

/// The shared memory holding validated API keys for every backend, in kB (read at start).
pub static SHARED_KEY_MEMORY_KB: GucSetting<i32> = GucSetting::<i32>::new(32 * 1024);

/// A request id for the audit log; read in SQL (sql/internal.sql, write_audit), registered
/// here so that SHOW and pg_settings describe it.
static TRACE_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn register() {
    // Only a preloading server can have shared memory; elsewhere its setting is shown, fixed.
    // SAFETY: a plain read of a flag PostgreSQL sets while it preloads libraries.
    let shared_memory_context = match unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        true => GucContext::Postmaster,
        false => GucContext::Internal,
    };
    GucRegistry::define_string_guc(
        c"authz.trace_id",
        c"A request or trace id written into the audit rows of the changes made while it is set.",
        c"Set it per request with SET LOCAL authz.trace_id = '...'; empty writes no id.",
        &TRACE_ID,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"authz.cache",
        c"Whether permission checks use the backend-local decision cache.",
        c"Answers are the same either way; off reads the tables on every check. The cache needs shared_preload_libraries = 'authz_ext'.",
        &CACHE_ENABLED,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"authz.cache_memory",
        c"Memory each backend's decision cache may hold: cached users, the log of recent misses (an eighth more) and the catalog; the API keys and relationship answers it remembers take up to three eighths more.",
        c"The least recently used users go first; a user whose overrides for one permission do not fit is read row by row, never cached. 0 caches nothing.",
        &CACHE_MEMORY_KB,
        0,
        4 * 1024 * 1024,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"authz.shared_key_memory",
        c"Shared memory that keeps validated API keys for every backend (about 1,300 keys a 256 kB).",
        c"Needs shared_preload_libraries = 'authz_ext'; set at server start. 0 keeps none: each backend reads each key once.",
        &SHARED_KEY_MEMORY_KB,
        0,
        1024 * 1024,
        shared_memory_context,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"authz.key_last_used_interval",
        c"Minimum time between two writes of an API key's last_used_at by api_key_validate.",
        c"0 writes on every validation. Writes are skipped in read-only transactions and on a hot standby.",
        &KEY_LAST_USED_INTERVAL,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
}

/// After every authz.* setting is defined: an unknown one is an error (a typo like
/// authz.cahce is not silently a placeholder).
pub fn reserve_prefix() {
    // SAFETY: PostgreSQL's own call for this (PostgreSQL 15 and later).
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"authz".as_ptr()) };
}
