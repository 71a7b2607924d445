//! What a parsed model must satisfy before it is stored, after OpenFGA's own model
//! validation: schema 1.1; names unique and not reserved; every type, relation and
//! condition referred to defined; a tuple-to-userset's tupleset a relation written directly
//! with plain types, its computed relation defined on at least one of them; and every
//! relation with an entry point (some way for a tuple to make it true — `define a: b` with
//! `define b: a` has none).

use super::model::{Model, RestrictionKind, Rewrite};
use std::collections::HashSet;

/// Why a model is invalid (OpenFGA answers such a model with its validation error).
pub type Invalid = String;

const RESERVED: [&str; 2] = ["self", "this"];
/// OpenFGA's naming rules: type names of at most 254 characters, relation names of at most
/// 50; and ours for condition names, 256 (a tuple's index entries hold all three).
const MAX_TYPE_NAME: usize = 254;
const MAX_RELATION_NAME: usize = 50;
const MAX_CONDITION_NAME: usize = 256;

/// That `name` (of a `what`) is at most `max` characters long.
fn short_enough(what: &str, name: &str, max: usize) -> Result<(), Invalid> {
    match name.chars().count() {
        n if n > max => Err(format!("{what} name \"{}…\" has {n} characters; the limit is {max}", name.chars().take(20).collect::<String>())),
        _ => Ok(()),
    }
}

pub fn validate(model: &Model) -> Result<(), Invalid> {
    if model.schema != "1.1" {
        return Err(format!("schema {} is not supported: use schema 1.1", model.schema));
    }
    let mut types = HashSet::new();
    for t in &model.types {
        if RESERVED.contains(&t.name.as_str()) {
            return Err(format!("type name \"{}\" is reserved", t.name));
        }
        short_enough("type", &t.name, MAX_TYPE_NAME)?;
        if !types.insert(t.name.as_str()) {
            return Err(format!("type {} is defined twice", t.name));
        }
        let mut relations = HashSet::new();
        for r in &t.relations {
            if RESERVED.contains(&r.name.as_str()) {
                return Err(format!("relation name \"{}\" of type {} is reserved", r.name, t.name));
            }
            short_enough("relation", &r.name, MAX_RELATION_NAME)?;
            if !relations.insert(r.name.as_str()) {
                return Err(format!("relation {} of type {} is defined twice", r.name, t.name));
            }
        }
    }
    let mut conditions = HashSet::new();
    for c in &model.conditions {
        short_enough("condition", &c.name, MAX_CONDITION_NAME)?;
        if !conditions.insert(c.name.as_str()) {
            return Err(format!("condition {} is defined twice", c.name));
        }
        let mut parameters = HashSet::new();
        if let Some((p, _)) = c.parameters.iter().find(|(p, _)| !parameters.insert(p.as_str())) {
            return Err(format!("parameter {p} of condition {} is declared twice", c.name));
        }
    }
    for t in &model.types {
        for r in &t.relations {
            references(model, &t.name, &r.name, &r.rewrite)?;
        }
    }
    for t in &model.types {
        for r in &t.relations {
            if !has_entry(model, &t.name, &r.name, &mut HashSet::new()) {
                return Err(format!(
                    "relation {}#{} has no entry point: no tuple can ever make it true (a cycle of relations without a direct type)",
                    t.name, r.name
                ));
            }
        }
    }
    Ok(())
}

/// Whatever the rewrite of `type_name#relation` refers to exists.
fn references(model: &Model, type_name: &str, relation: &str, rewrite: &Rewrite) -> Result<(), Invalid> {
    let here = format!("{type_name}#{relation}");
    match rewrite {
        Rewrite::Direct(list) => {
            for restriction in list {
                let t = &restriction.type_name;
                if model.type_def(t).is_none() {
                    return Err(format!("{here}: type {t} is not defined"));
                }
                if let RestrictionKind::Userset(r) = &restriction.kind {
                    if model.relation(t, r).is_none() {
                        return Err(format!("{here}: relation {t}#{r} is not defined"));
                    }
                }
                if let Some(c) = &restriction.condition {
                    if model.condition(c).is_none() {
                        return Err(format!("{here}: condition {c} is not defined"));
                    }
                }
            }
            Ok(())
        }
        Rewrite::Computed(r) => match model.relation(type_name, r) {
            Some(_) => Ok(()),
            None => Err(format!("{here}: relation {type_name}#{r} is not defined")),
        },
        Rewrite::TupleToUserset { tupleset, computed } => {
            let Some(ts) = model.relation(type_name, tupleset) else {
                return Err(format!("{here}: relation {type_name}#{tupleset} (after \"from\") is not defined"));
            };
            let Rewrite::Direct(list) = &ts.rewrite else {
                return Err(format!("{here}: {type_name}#{tupleset} (after \"from\") must be defined by type restrictions alone"));
            };
            if list.iter().any(|r| r.kind != RestrictionKind::Type) {
                return Err(format!("{here}: {type_name}#{tupleset} (after \"from\") may only allow plain types, not usersets or wildcards"));
            }
            if !list.iter().any(|r| model.relation(&r.type_name, computed).is_some()) {
                return Err(format!("{here}: relation {computed} is not defined on any type {type_name}#{tupleset} allows"));
            }
            Ok(())
        }
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            children.iter().try_for_each(|c| references(model, type_name, relation, c))
        }
        Rewrite::Exclusion { base, subtract } => {
            references(model, type_name, relation, base)?;
            references(model, type_name, relation, subtract)
        }
    }
}

/// Whether some set of tuples could make `type_name#relation` true for some subject,
/// without going round a cycle.
fn has_entry<'m>(model: &'m Model, type_name: &'m str, relation: &'m str, visiting: &mut HashSet<(&'m str, &'m str)>) -> bool {
    let Some(r) = model.relation(type_name, relation) else {
        return false;
    };
    if !visiting.insert((type_name, relation)) {
        return false;
    }
    let found = rewrite_has_entry(model, type_name, &r.rewrite, visiting);
    visiting.remove(&(type_name, relation));
    found
}

fn rewrite_has_entry<'m>(model: &'m Model, type_name: &'m str, rewrite: &'m Rewrite, visiting: &mut HashSet<(&'m str, &'m str)>) -> bool {
    match rewrite {
        Rewrite::Direct(list) => list.iter().any(|r| match &r.kind {
            RestrictionKind::Type | RestrictionKind::Wildcard => true,
            RestrictionKind::Userset(rel) => has_entry(model, &r.type_name, rel, visiting),
        }),
        Rewrite::Computed(r) => has_entry(model, type_name, r, visiting),
        Rewrite::TupleToUserset { tupleset, computed } => match model.relation(type_name, tupleset).map(|r| &r.rewrite) {
            Some(Rewrite::Direct(list)) => list.iter().any(|r| has_entry(model, &r.type_name, computed, visiting)),
            _ => false,
        },
        Rewrite::Union(children) => children.iter().any(|c| rewrite_has_entry(model, type_name, c, visiting)),
        Rewrite::Intersection(children) => children.iter().all(|c| rewrite_has_entry(model, type_name, c, visiting)),
        Rewrite::Exclusion { base, .. } => rewrite_has_entry(model, type_name, base, visiting),
    }
}

#[cfg(test)]
mod tests {
    use super::super::dsl::parse;
    use super::*;

    fn check(body: &str) -> Result<(), Invalid> {
        validate(&parse(&format!("model\n  schema 1.1\n{body}")).expect("parses"))
    }

    #[test]
    fn valid_models() {
        for body in [
            "type user\ntype document\n  relations\n    define viewer: [user]",
            "type user\ntype group\n  relations\n    define member: [user, group#member]",
            "type user\ntype folder\n  relations\n    define viewer: [user]\ntype doc\n  relations\n    define parent: [folder]\n    define viewer: [user] or viewer from parent",
            "type user\ntype doc\n  relations\n    define viewer: [user] or viewer",
            "type user\ntype doc\n  relations\n    define a: [user]\n    define b: a but not b",
            "type user\ntype doc\n  relations\n    define viewer: [user:*, user with c]\ncondition c(x: int) { x < 1 }",
            &format!("type {}\n  relations\n    define {}: [{0}]", "t".repeat(254), "r".repeat(50)),
        ] {
            assert_eq!(check(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn invalid_models() {
        let parsed = |text: &str| validate(&parse(text).unwrap());
        assert!(parsed("model\n  schema 1.0\ntype user").unwrap_err().contains("schema 1.0"));
        for (body, expected) in [
            ("type user\ntype user", "defined twice"),
            ("type self", "reserved"),
            (&format!("type {}", "t".repeat(255)), "has 255 characters; the limit is 254"),
            (&format!("type user\n  relations\n    define {}: [user]", "r".repeat(51)), "has 51 characters; the limit is 50"),
            (&format!("type user\n  relations\n    define v: [user with c]\ncondition {}(x: int) {{ x < 1 }}", "c".repeat(257)), "the limit is 256"),
            ("type user\n  relations\n    define this: [user]", "reserved"),
            ("type user\n  relations\n    define a: [user]\n    define a: [user]", "defined twice"),
            ("type doc\n  relations\n    define viewer: [user]", "type user is not defined"),
            ("type user\ntype doc\n  relations\n    define viewer: [user#member]", "user#member is not defined"),
            ("type user\ntype doc\n  relations\n    define viewer: [user with c]", "condition c is not defined"),
            ("type user\ntype doc\n  relations\n    define viewer: editor", "doc#editor is not defined"),
            ("type user\ntype doc\n  relations\n    define viewer: viewer from parent", "after \"from\") is not defined"),
            ("type user\ntype doc\n  relations\n    define parent: [doc#viewer]\n    define viewer: [user] or viewer from parent", "plain types"),
            ("type user\ntype doc\n  relations\n    define parent: [doc] or viewer\n    define viewer: [user] or viewer from parent", "type restrictions alone"),
            ("type user\ntype doc\n  relations\n    define parent: [user]\n    define viewer: [user] or viewer from parent", "not defined on any type"),
            ("type user\ntype doc\n  relations\n    define a: b\n    define b: a", "no entry point"),
            ("type user\ntype doc\n  relations\n    define a: [user] and b\n    define b: a", "no entry point"),
            ("type user\ntype group\n  relations\n    define member: [group#member]", "no entry point"),
            ("type user\ncondition c(x: int, x: int) { x }", "declared twice"),
            ("type user\ncondition c(x: int) { x }\ncondition c(y: int) { y }", "defined twice"),
        ] {
            let e = check(body).unwrap_err();
            assert!(e.contains(expected), "{body}: {e}");
        }
    }
}
