//! Relationship tuples: an object (`type:id`), a relation, and a subject — an object
//! (`user:anne`), every object of a type (`user:*`) or a userset (`group:eng#member`: the
//! subjects related to group:eng by member).

use super::dsl::is_identifier;
use crate::core::permission::shorten;
use std::fmt;

/// `type:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Object {
    pub type_name: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Object(Object),
    Wildcard(String),
    Userset(Object, String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub object: Object,
    pub relation: String,
    pub subject: Subject,
    /// `with <condition>`: the tuple holds only when the condition does.
    pub condition: Option<String>,
}

/// Longest object id accepted (OpenFGA's limit is 256 bytes for `type:id` as a whole).
const MAX_ID_BYTES: usize = 256;

/// Why an object, subject or relation is malformed.
pub type Malformed = String;

impl Object {
    /// `type:id`: a type name and an id of at most 256 bytes without whitespace or `#` (and
    /// not `*`, which is every object of the type).
    pub fn parse(s: &str) -> Result<Object, Malformed> {
        let (type_name, id) = s.split_once(':').ok_or_else(|| format!("\"{}\" is not of the form type:id", shorten(s)))?;
        if !is_identifier(type_name) {
            return Err(format!("\"{}\" has an invalid type name", shorten(s)));
        }
        if id.is_empty() || id.len() > MAX_ID_BYTES || id.contains(|c: char| c.is_whitespace() || c == '#') || id == "*" {
            return Err(format!("\"{}\" has an invalid id", shorten(s)));
        }
        Ok(Object { type_name: type_name.to_string(), id: id.to_string() })
    }
}

impl Subject {
    /// `type:id`, `type:*` or `type:id#relation`.
    pub fn parse(s: &str) -> Result<Subject, Malformed> {
        if let Some((object, relation)) = s.split_once('#') {
            if !is_identifier(relation) {
                return Err(format!("\"{}\" has an invalid relation", shorten(s)));
            }
            return Ok(Subject::Userset(Object::parse(object)?, relation.to_string()));
        }
        if let Some(type_name) = s.strip_suffix(":*") {
            if !is_identifier(type_name) {
                return Err(format!("\"{}\" has an invalid type name", shorten(s)));
            }
            return Ok(Subject::Wildcard(type_name.to_string()));
        }
        Object::parse(s).map(Subject::Object)
    }

    pub fn type_name(&self) -> &str {
        match self {
            Subject::Object(o) | Subject::Userset(o, _) => &o.type_name,
            Subject::Wildcard(t) => t,
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_name, self.id)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Object(o) => write!(f, "{o}"),
            Subject::Wildcard(t) => write!(f, "{t}:*"),
            Subject::Userset(o, r) => write!(f, "{o}#{r}"),
        }
    }
}

/// `object#relation@subject`, OpenFGA's notation.
impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.object, self.relation, self.subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for s in ["user:anne", "user:*", "group:eng#member", "doc:a/b.c|d", "user:1"] {
            assert_eq!(Subject::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Object::parse("doc:1").unwrap(), Object { type_name: "doc".into(), id: "1".into() });
        for bad in ["user", ":x", "user:", "user: x", "9x:1", "user:a#", "user:a#1r", "user:*#member", "user:a#b#c"] {
            assert!(Subject::parse(bad).is_err(), "{bad}");
        }
        assert!(Object::parse("doc:*").is_err(), "an object is one object");
        assert!(Object::parse(&format!("doc:{}", "x".repeat(300))).is_err());
    }
}
