//! What `api_key_validate` answers for a token (docs/guide.md, API keys), and when it
//! refreshes a key's `last_used_at`.

use super::resolve::Timestamp;
use super::token;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Malformed,
    Unknown,
    Expired,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Malformed => "malformed",
            Status::Unknown => "unknown",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

/// The stored facts about a key that decide its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    pub revoked: bool,
    pub expires_at: Option<Timestamp>,
}

/// Status of a key found (or not) by the hash of a well-formed token. Revocation is
/// reported before expiry: it is the deliberate act.
pub fn status(found: Option<KeyState>, now: Timestamp) -> Status {
    match found {
        None => Status::Unknown,
        Some(k) if k.revoked => Status::Revoked,
        Some(KeyState { expires_at: Some(at), .. }) if at <= now => Status::Expired,
        Some(_) => Status::Valid,
    }
}

/// Malformed tokens are answered from the string alone, without any table access.
pub fn precheck(candidate: Option<&str>) -> Option<Status> {
    match candidate {
        Some(t) if token::parse(t).is_ok() => None,
        _ => Some(Status::Malformed),
    }
}

/// Whether a valid key's `last_used_at` is older than the interval (in seconds) and so
/// worth writing again.
pub fn last_used_due(last_used_at: Option<Timestamp>, now: Timestamp, interval_seconds: i32) -> bool {
    last_used_at.is_none_or(|at| now - at >= i64::from(interval_seconds) * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_000_000_000;

    #[test]
    fn statuses() {
        let live = KeyState { revoked: false, expires_at: None };
        assert_eq!(status(None, NOW), Status::Unknown);
        assert_eq!(status(Some(live), NOW), Status::Valid);
        assert_eq!(status(Some(KeyState { expires_at: Some(NOW + 1), ..live }), NOW), Status::Valid);
        assert_eq!(status(Some(KeyState { expires_at: Some(NOW), ..live }), NOW), Status::Expired);
        assert_eq!(status(Some(KeyState { revoked: true, expires_at: Some(NOW - 1) }), NOW), Status::Revoked);
    }

    #[test]
    fn precheck_rejects_without_lookup() {
        assert_eq!(precheck(None), Some(Status::Malformed));
        assert_eq!(precheck(Some("")), Some(Status::Malformed));
        assert_eq!(precheck(Some("azk_nope")), Some(Status::Malformed));
        let good = format!("azk_{}2It5VD", "0".repeat(32));
        assert_eq!(precheck(Some(&good)), None);
    }

    #[test]
    fn last_used_is_written_once_per_interval() {
        assert!(last_used_due(None, NOW, 60));
        assert!(!last_used_due(Some(NOW - 59_999_999), NOW, 60));
        assert!(last_used_due(Some(NOW - 60_000_000), NOW, 60));
        assert!(last_used_due(Some(NOW), NOW, 0));
    }
}
