//! Permission names: `<resource_type>:<action>`, each part a lower-case identifier.

use super::error::{Error, Result};

/// Splits a well-formed permission name into (resource_type, action).
pub fn parse(name: &str) -> Result<(&str, &str)> {
    match name.split_once(':') {
        Some((resource_type, action)) if is_identifier(resource_type) && is_identifier(action) => {
            Ok((resource_type, action))
        }
        _ => Err(Error::invalid_with_hint(
            format!("malformed permission \"{}\"", shorten(name)),
            "A permission is written <resource_type>:<action> in lower case, e.g. 'document:read'; \
             SELECT name FROM authz.permissions lists them.",
        )),
    }
}

/// A lower-case identifier of 1 to 63 characters: `[a-z][a-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Bad input is echoed in messages only in part, so a huge string makes a short message.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_well_formed_names() {
        assert_eq!(parse("document:read").unwrap(), ("document", "read"));
        assert_eq!(parse("api_key:create").unwrap(), ("api_key", "create"));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["", ":", "document", "document:", ":read", "Document:read", "document:read:x",
                    "doc ument:read", "1doc:read", "document:réad"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.sqlstate(), "22023", "{bad:?}");
        }
    }

    #[test]
    fn shortens_long_input() {
        let long = "a".repeat(1000);
        assert_eq!(shorten(&long).len(), 67);
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten(&"é".repeat(100)).chars().count(), 67);
    }
}
