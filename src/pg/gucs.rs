//! The extension's settings, registered when the library loads.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Seconds between two writes of a key's `last_used_at` by `api_key_validate`.
pub static KEY_LAST_USED_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);

pub fn register() {
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
