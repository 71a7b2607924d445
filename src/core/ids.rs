//! Canonical text form of application ids (docs/guide.md, Permissions): integers in decimal,
//! uuids lower-case hyphenated, text as given. `42`, `42::int` and `'42'` are one id.

use super::error::{Error, Result};

/// Longest id (in bytes) a mutator stores; keeps every id well inside a btree entry.
pub const MAX_ID_BYTES: usize = 1024;

/// The canonical text of a uuid given as its 16 bytes.
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

/// Checks an id before it is stored: not empty, not longer than MAX_ID_BYTES.
/// (Checks accept any id: one that could never be stored simply has no grants.)
pub fn validate_for_storage(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::invalid(format!(
            "{what} is {} bytes long; ids may be at most {MAX_ID_BYTES} bytes",
            id.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_is_lower_case_hyphenated() {
        let bytes = [
            0x55, 0x0E, 0x84, 0x00, 0xE2, 0x9B, 0x41, 0xD4, 0xA7, 0x16, 0x44, 0x66, 0x55, 0x44,
            0x00, 0x00,
        ];
        assert_eq!(uuid_text(&bytes), "550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(uuid_text(&[0; 16]), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn storage_rejects_empty_and_huge_ids() {
        assert!(validate_for_storage("user_id", "42").is_ok());
        assert_eq!(validate_for_storage("user_id", "").unwrap_err().sqlstate(), "22023");
        let huge = "x".repeat(MAX_ID_BYTES + 1);
        assert!(validate_for_storage("resource_id", &huge).is_err());
        assert!(validate_for_storage("resource_id", &huge[1..]).is_ok());
    }
}
