//! Canonical text form of application ids (docs/guide.md, Permissions): integers in decimal,
//! uuids lower-case hyphenated, text as given. `42`, `42::int` and `'42'` are one id.

use super::error::{Error, Result};

/// `a == b`, compared in a loop of our own. On the few-byte texts of index entries just
/// read, the `memcmp` call `==` makes spent most of its time on its first (masked vector)
/// load; list_objects compares five columns an entry this way, and over 10,000 entries took
/// about a fifth less time than with `==` (benches/relationships.sh's case, alternated).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Longest id (in bytes) a mutator stores; keeps every id well inside a btree entry.
pub const MAX_ID_BYTES: usize = 1024;

/// An id as a check is given it: an integer (bigint, integer, smallint), kept as its value
/// so that nothing is formatted per row, or text in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    Integer(i64),
    Text(&'a str),
}

impl<'a> Id<'a> {
    /// The integer the id is, also when given as the canonical text of one ("42", not
    /// "042" or "+42", which are other ids).
    pub fn as_integer(&self) -> Option<i64> {
        match *self {
            Id::Integer(n) => Some(n),
            Id::Text(s) => canonical_integer(s),
        }
    }

    /// The canonical text.
    pub fn text(&self) -> std::borrow::Cow<'a, str> {
        match *self {
            Id::Integer(n) => itoa::Buffer::new().format(n).to_string().into(),
            Id::Text(s) => s.into(),
        }
    }
}

/// The integer `s` is the canonical decimal text of, if any.
pub fn canonical_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = s.parse().ok()?;
    (itoa::Buffer::new().format(n) == s).then_some(n)
}

/// Writes the canonical text of a uuid given as its 16 bytes; returns its length (36).
pub fn uuid_text(bytes: &[u8; 16], out: &mut [u8; 36]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[n] = b'-';
            n += 1;
        }
        out[n] = HEX[(b >> 4) as usize];
        out[n + 1] = HEX[(b & 0xf) as usize];
        n += 2;
    }
    n
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
    fn same_bytes_is_equality() {
        let long = "x".repeat(1024);
        let cases: [(&str, &str); 7] =
            [("", ""), ("document", "document"), ("document", "documenu"), ("doc", "document"), ("", "a"), (&long, &long), (&long, "x")];
        for (a, b) in cases {
            assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a:?} vs {b:?}");
            assert_eq!(same_bytes(b.as_bytes(), a.as_bytes()), a == b, "{b:?} vs {a:?}");
        }
        let mut other = long.clone().into_bytes();
        other[1023] = b'y';
        assert!(!same_bytes(long.as_bytes(), &other));
    }

    #[test]
    fn canonical_integers() {
        for (text, integer) in [("0", Some(0)), ("42", Some(42)), ("-7", Some(-7)),
                                ("9223372036854775807", Some(i64::MAX)), ("-9223372036854775808", Some(i64::MIN)),
                                ("042", None), ("+42", None), ("-0", None), ("", None), ("-", None), (" 1", None),
                                ("9223372036854775808", None), ("1e3", None), ("abc", None)] {
            assert_eq!(canonical_integer(text), integer, "{text}");
            assert_eq!(Id::Text(text).as_integer(), integer);
        }
        assert_eq!(Id::Integer(-12).text(), "-12");
    }

    proptest::proptest! {
        #[test]
        fn every_integer_is_its_canonical_text(n: i64) {
            proptest::prop_assert_eq!(canonical_integer(&n.to_string()), Some(n));
            proptest::prop_assert_eq!(Id::Integer(n).text(), n.to_string());
        }
    }

    #[test]
    fn uuid_text_is_lower_case_hyphenated() {
        let bytes = [
            0x55, 0x0E, 0x84, 0x00, 0xE2, 0x9B, 0x41, 0xD4, 0xA7, 0x16, 0x44, 0x66, 0x55, 0x44,
            0x00, 0x00,
        ];
        let text = |bytes: &[u8; 16]| {
            let mut out = [0; 36];
            let n = uuid_text(bytes, &mut out);
            String::from_utf8(out[..n].to_vec()).unwrap()
        };
        assert_eq!(text(&bytes), "550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(text(&[0; 16]), "00000000-0000-0000-0000-000000000000");
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
