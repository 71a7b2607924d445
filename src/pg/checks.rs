//! The permission checks: authz_check, authz_explain, authz_require.

use super::args::Args;
use super::cache;
use super::clock;
use super::latest::{self, Statement};
use super::ids::{id_text, optional_id_text};
use super::owner::as_owner;
use super::report::{raise, OrRaise};
use super::stats::{self, Counter};
use crate::core::error::Error;
use crate::core::permission;
use crate::core::cache::Facts;
use crate::core::resolve::{resolve, DecidedBy, Decision, Effect};
use pgrx::prelude::*;
use pgrx::AnyElement;
use pgrx::pg_sys;

/// A decided check, with what explain and require report.
struct Answer {
    decision: Decision,
    role: Option<String>,
    user: String,
    permission: String,
    resource: Option<String>,
}

/// Decides a check; None when the user or permission is NULL (which never allows).
fn decide(user: Option<AnyElement>, permission: Option<&str>, resource: Option<AnyElement>) -> Option<Answer> {
    let (user, permission) = (id_text("user_id", user?).or_raise(), permission?);
    let resource = optional_id_text("resource_id", resource).or_raise();
    let (decision, role) = decide_with(&user, permission, resource.as_deref(), |d, facts| (d, facts.role.clone()));
    Some(Answer { decision, role, user, permission: permission.to_string(), resource })
}

/// Whether the user holds the permission on the resource (NULL: the type level), for a
/// user id already in canonical text. The check's hot path: nothing is built for messages.
pub(super) fn allowed(user: &str, permission: Option<&str>, resource: Option<AnyElement>) -> bool {
    let Some(permission) = permission else {
        return false;
    };
    let resource = optional_id_text("resource_id", resource).or_raise();
    decide_with(user, permission, resource.as_deref(), |d, _| d.allowed)
}

/// Resolves a check from the decision cache, or from the tables when the cache is off or
/// not to be trusted in this statement, and hands the decision and its facts to `read`.
/// Raises 22023 for a malformed or unknown permission.
fn decide_with<R>(user: &str, permission: &str, resource: Option<&str>, read: impl Fn(Decision, &Facts) -> R) -> R {
    let evaluate = |facts: &Facts| {
        // The clock is read only when an override that could decide expires.
        let now = if facts.expiry_matters(resource) { clock::now() } else { 0 };
        let decision = resolve(facts.resource_level_for(resource), &facts.type_level, facts.role_allows, now);
        (facts.known_permission, decision.allowed, read(decision, facts))
    };
    // Only a well-formed permission is ever looked up in the tables (and so cached).
    let parse = || permission::parse(permission).map(|_| ()).or_raise();
    let (known, allowed, answer) = cache::with_facts(user, permission, resource, parse, &evaluate).unwrap_or_else(|| {
        parse();
        evaluate(&cache::load_for_check(user, permission, resource))
    });
    if !known {
        require_known_permission(permission);
    }
    stats::bump(if allowed { Counter::Allows } else { Counter::Denies });
    answer
}

/// Raises the catalog's own 22023 error (with the valid choices) for an unknown permission.
fn require_known_permission(permission: &str) {
    as_owner(|| {
        Spi::run_with_args("SELECT authz.require_known_permission($1)", &[permission.into()])
            .expect("require_known_permission raises rather than returning an SPI error");
    });
    raise(Error::invalid(format!("unknown permission \"{}\"", permission::shorten(permission))));
}

fn reason(answer: &Answer) -> String {
    let d = &answer.decision;
    let verdict = if d.allowed { "allowed" } else { "denied" };
    let role = answer.role.as_deref();
    match (d.decided_by, d.grant) {
        (DecidedBy::Resource, Some(g)) => format!(
            "{verdict} by override {} ({}) on this resource", g.grant_id, effect_word(g.effect)
        ),
        (DecidedBy::ResourceType, Some(g)) => format!(
            "{verdict} by override {} ({}) on every resource of the type", g.grant_id, effect_word(g.effect)
        ),
        (DecidedBy::Role, _) => format!("allowed by role {}", role.unwrap_or("?")),
        _ => match role {
            Some(r) => format!("denied: no override applies and role {r} does not include {}", answer.permission),
            None => "denied: no override applies and the user has no role".to_string(),
        },
    }
}

fn effect_word(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

#[pg_extern(sql = false)]
fn authz_check(user_id: Option<AnyElement>, permission: Option<&str>, resource_id: Option<AnyElement>) -> bool {
    user_id.is_some_and(|u| allowed(&id_text("user_id", u).or_raise(), permission, resource_id))
}

#[pg_extern(sql = false)]
fn authz_check_type(user_id: Option<AnyElement>, permission: Option<&str>) -> bool {
    user_id.is_some_and(|u| allowed(&id_text("user_id", u).or_raise(), permission, None))
}

static EXPLICIT_RESOURCES: Statement = Statement {
    sql: c"SELECT resource_id FROM authz.grants
           WHERE user_id OPERATOR(pg_catalog.=) $1 AND permission OPERATOR(pg_catalog.=) $2
             AND resource_id IS NOT NULL AND effect OPERATOR(pg_catalog.=) 'allow'
             AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) $3)",
    arg_types: &[pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TIMESTAMPTZOID],
};

/// The resources the user holds a live allow override for: with the type-level check, what
/// lets an RLS policy find a selective user's rows by index (docs/guide.md).
#[pg_extern(sql = false)]
fn authz_resources(user_id: Option<AnyElement>, permission: Option<&str>) -> SetOfIterator<'static, String> {
    let (Some(user), Some(permission)) = (user_id, permission) else {
        return SetOfIterator::new(Vec::new());
    };
    let user = id_text("user_id", user).or_raise();
    // The same errors as a check for a malformed or unknown permission.
    decide_with(&user, permission, None, |_, _| ());
    let args = [user.as_str().into_datum(), permission.into_datum(), Some(pg_sys::Datum::from(clock::now()))];
    let found = as_owner(|| latest::query(&EXPLICIT_RESOURCES, &args, |row| row.get::<String>(1).unwrap_or_default()));
    SetOfIterator::new(found)
}

#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn authz_explain(
    fcinfo: pg_sys::FunctionCallInfo,
) -> TableIterator<
    'static,
    (
        name!(allowed, bool),
        name!(decided_by, String),
        name!(role, Option<String>),
        name!(grant_id, Option<i64>),
        name!(expires_at, Option<TimestampWithTimeZone>),
        name!(reason, String),
    ),
> {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let row = match decide(args.id(0), args.get(1), args.id(2)) {
        Some(answer) => {
            let d = answer.decision;
            (
                d.allowed,
                d.decided_by.as_str().to_string(),
                answer.role.clone(),
                d.grant.map(|g| g.grant_id),
                d.grant.and_then(|g| g.expires_at).map(|t| TimestampWithTimeZone::try_from(t).expect("stored timestamp")),
                reason(&answer),
            )
        }
        None => (false, "default".into(), None, None, None, "denied: the user or permission is NULL".into()),
    };
    TableIterator::once(row)
}

#[pg_extern(sql = false)]
fn authz_require(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let permission: Option<&str> = args.get(1);
    let Some(answer) = decide(args.id(0), permission, args.id(2)) else {
        raise(Error::NullValue { parameter: if permission.is_none() { "permission" } else { "user_id" } });
    };
    if !answer.decision.allowed {
        let on = match &answer.resource {
            Some(r) => format!("resource {}", permission::shorten(r)),
            None => "every resource of the type".to_string(),
        };
        let message = format!(
            "permission denied: user {} may not {} on {on} ({})",
            permission::shorten(&answer.user),
            answer.permission,
            reason(&answer)
        );
        stats::log_denial(&message);
        raise(Error::Denied { message });
    }
}

/// `authz.noop_check`: authz_check's arguments, read and ignored — the floor of a pgrx
/// function call with these types, for benches/checks.sh.
#[pg_extern(sql = false)]
fn authz_noop_check(user_id: Option<AnyElement>, permission: Option<&str>, resource_id: Option<AnyElement>) -> bool {
    user_id.is_some() && permission.is_some() && resource_id.is_none()
}
