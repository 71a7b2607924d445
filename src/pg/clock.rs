//! What "now" is for the checks.

use pgrx::pg_sys;

/// The time of this call, which expiry (of overrides and keys) is compared with: never
/// earlier than the start of the statement running it, whether that statement came alone,
/// with others in one message, or inside a function or procedure (docs/guide.md, Freshness).
pub fn now() -> i64 {
    // SAFETY: reads the system clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// The start of the client's current message: one value for all the statements it runs.
/// Only what a miss loads is decided by it (core::misses tells a scan from a repeat).
pub fn message_start() -> i64 {
    // SAFETY: always valid inside a transaction.
    unsafe { pg_sys::GetCurrentStatementStartTimestamp() }
}
