//! Tuples as SQL callers send them in jsonb: contextual tuples of a query, and the writes
//! and deletes of a bulk change. An array of objects
//! `{"object": "document:1", "relation": "viewer", "user": "user:anne"}`, with, where it
//! makes sense, `"condition"` (a name, or `{"name": ..., "context": {...}}`) and
//! `"expires_at"` (a timestamp string, read by PostgreSQL).

use super::dsl::is_identifier;
use super::tuple::{Object, Subject, Tuple};
use crate::core::permission::shorten;
use serde_json::{Map, Value};

/// One element: the tuple, its condition's context and its expiry (as given).
#[derive(Debug, Clone, PartialEq)]
pub struct TupleInput {
    pub tuple: Tuple,
    pub context: Option<Map<String, Value>>,
    pub expires_at: Option<String>,
}

/// Which keys an element may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Contextual tuples of a query: object, relation, user, condition.
    Contextual,
    /// Writes: those and expires_at.
    Write,
    /// Deletes: object, relation, user.
    Delete,
}

impl Shape {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Shape::Contextual => &["object", "relation", "user", "condition"],
            Shape::Write => &["object", "relation", "user", "condition", "expires_at"],
            Shape::Delete => &["object", "relation", "user"],
        }
    }
}

/// The elements of `value`, a JSON array; `what` names the argument in messages, which
/// count elements from 1.
pub fn tuples_from_json(value: &Value, what: &str, shape: Shape) -> Result<Vec<TupleInput>, String> {
    let Value::Array(elements) = value else {
        return Err(format!("{what} must be a JSON array of {{\"object\", \"relation\", \"user\"}} objects"));
    };
    elements
        .iter()
        .enumerate()
        .map(|(i, e)| element(e, shape).map_err(|why| format!("{what} element {}: {why}", i + 1)))
        .collect()
}

fn element(e: &Value, shape: Shape) -> Result<TupleInput, String> {
    let Value::Object(fields) = e else {
        return Err("not a JSON object".into());
    };
    if let Some(key) = fields.keys().find(|k| !shape.keys().contains(&k.as_str())) {
        return Err(format!("unknown key \"{}\" (the keys are {})", shorten(key), shape.keys().join(", ")));
    }
    let text = |key: &str| match fields.get(key) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(format!("\"{key}\" must be a string")),
    };
    let object = Object::parse(text("object")?)?;
    let relation = text("relation")?;
    if !is_identifier(relation) {
        return Err(format!("invalid relation \"{}\"", shorten(relation)));
    }
    let subject = Subject::parse(text("user")?)?;
    let (condition, context) = match fields.get("condition") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(name)) => (Some(name.clone()), None),
        Some(Value::Object(c)) => {
            if let Some(key) = c.keys().find(|k| !matches!(k.as_str(), "name" | "context")) {
                return Err(format!("unknown key \"{}\" in condition (the keys are name, context)", shorten(key)));
            }
            let Some(Value::String(name)) = c.get("name") else {
                return Err("the condition's \"name\" must be a string".into());
            };
            let context = match c.get("context") {
                None | Some(Value::Null) => None,
                Some(Value::Object(context)) => Some(context.clone()),
                _ => return Err("the condition's \"context\" must be a JSON object".into()),
            };
            (Some(name.clone()), context)
        }
        _ => return Err("\"condition\" must be a name or {\"name\", \"context\"}".into()),
    };
    if let Some(name) = &condition {
        if !is_identifier(name) {
            return Err(format!("invalid condition name \"{}\"", shorten(name)));
        }
    }
    let expires_at = match fields.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        _ => return Err("\"expires_at\" must be a timestamp string".into()),
    };
    Ok(TupleInput { tuple: Tuple { object, relation: relation.to_string(), subject, condition }, context, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_elements_and_names_the_bad_one() {
        let got = tuples_from_json(
            &json!([{"object": "doc:1", "relation": "viewer", "user": "team:a#member",
                     "condition": {"name": "in_hours", "context": {"h": 9}}}]),
            "writes",
            Shape::Write,
        )
        .unwrap();
        assert_eq!(got[0].tuple.to_string(), "doc:1#viewer@team:a#member");
        assert_eq!(got[0].tuple.condition.as_deref(), Some("in_hours"));
        assert_eq!(got[0].context.as_ref().unwrap()["h"], 9);

        let ok = json!({"object": "doc:1", "relation": "viewer", "user": "user:a"});
        for (bad, why) in [
            (json!({"a": 1}), "must be a JSON array"),
            (json!([ok, 5]), "element 2: not a JSON object"),
            (json!([{"object": "doc", "relation": "viewer", "user": "user:a"}]), "element 1: \"doc\" is not of the form"),
            (json!([{"object": "doc:1", "relation": "1x", "user": "user:a"}]), "invalid relation"),
            (json!([{"object": "doc:1", "relation": "viewer", "user": 7}]), "\"user\" must be a string"),
            (json!([{"object": "doc:1", "relation": "viewer", "user": "user:a", "expires_at": "x"}]), "unknown key \"expires_at\""),
            (json!([{"object": "doc:1", "relation": "viewer", "user": "user:a", "condition": {"name": "c", "context": 1}}]), "\"context\" must be"),
            (json!([{"object": "doc:1", "relation": "viewer", "user": "user:a", "condition": "no such"}]), "invalid condition name"),
        ] {
            let err = tuples_from_json(&bad, "contextual_tuples", Shape::Contextual).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(tuples_from_json(&json!([{"object": "doc:1", "relation": "viewer", "user": "user:a", "condition": "c"}]), "deletes", Shape::Delete)
            .unwrap_err()
            .contains("unknown key \"condition\""));
    }
}
