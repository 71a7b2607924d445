//! The SQL path of a check: one query for what it needs, when the cache is off or may not
//! answer. Independent of the direct reads of mod.rs, so the tests that compare answers
//! with the cache on and off compare two implementations.

use super::stored_override;
use crate::core::cache::Facts;
use crate::pg::latest::{self, Statement};
use crate::pg::owner::as_owner;
use pgrx::prelude::*;
use pgrx::pg_sys;

static CHECK_FACTS: Statement = Statement {
    sql: c"SELECT known, role, role_allows, grant_id, resource_id, effect, expires_at
           FROM authz.check_facts($1, $2, $3)",
    arg_types: &[pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID],
};

/// Reads from the tables, in one SQL query, what one check needs: the overrides for
/// `resource` and the type level.
pub fn load_for_check(user: &str, permission: &str, resource: Option<&str>) -> Facts {
    let args = [user.into_datum(), permission.into_datum(), resource.and_then(|r| r.into_datum())];
    let mut facts = Facts::default();
    let mut overrides = Vec::new();
    as_owner(|| {
        latest::query(&CHECK_FACTS, &args, |row| {
            facts.known_permission = row.get::<bool>(1).unwrap_or(false);
            facts.role = row.get::<String>(2);
            facts.role_allows = row.get::<bool>(3).unwrap_or(false);
            if let Some(grant_id) = row.get::<i64>(4) {
                overrides.push((row.get::<String>(5), stored_override(Some(grant_id), row.get(6), row.get(7))));
            }
        })
    });
    facts.set_overrides(overrides);
    facts
}
