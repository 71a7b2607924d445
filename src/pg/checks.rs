//! The permission checks: authz_check, authz_explain, authz_require.

use super::args::Args;
use super::cache;
use super::clock;
use super::latest::{self, Statement};
use super::ids::{self, id_ref, id_text, id_type, optional_id_text, IdRef};
use super::owner::as_owner;
use super::report::{raise, OrRaise};
use super::stats::{self, Counter};
use crate::core::error::Error;
use crate::core::permission;
use crate::core::cache::Facts;
use crate::core::ids::Id;
use super::cache::Found;
use crate::core::resolve::{DecidedBy, Decision, Effect, Override};
use pgrx::prelude::*;
use pgrx::pg_sys;
use pgrx::{AnyElement, PgMemoryContexts};
use std::cell::Cell;
use std::rc::Rc;

/// A decided check, with what explain and require report.
struct Answer {
    decision: Decision,
    role: Option<String>,
    user: String,
    permission: String,
    resource: Option<String>,
}

/// The ids of a check as text; None when the user or permission is NULL (which never
/// allows).
fn ids(user: Option<AnyElement>, permission: Option<&str>, resource: Option<AnyElement>) -> Option<(String, &str, Option<String>)> {
    let (user, permission) = (id_text("user_id", user?).or_raise(), permission?);
    Some((user, permission, optional_id_text("resource_id", resource).or_raise()))
}

/// Decides a check with what explains it, from the tables by the SQL path (the cache keeps
/// no grant ids): for authz_explain, and for authz_require's message.
fn explain(user: String, permission: &str, resource: Option<String>) -> Answer {
    permission::parse(permission).or_raise();
    let facts = cache::load_for_check(&user, permission, resource.as_deref());
    if !facts.known_permission {
        require_known_permission(permission);
    }
    let decision = evaluate(&facts, resource.as_deref().map(Id::Text));
    Answer { decision, role: facts.role.clone(), user, permission: permission.to_string(), resource }
}

fn evaluate(facts: &Facts, resource: Option<Id>) -> Decision {
    facts.decide(resource, clock::now)
}

pub(super) fn count(allowed: bool) {
    stats::bump(if allowed { Counter::Allows } else { Counter::Denies });
}

/// The facts a check of (user, permission) reads: from the decision cache, or from the
/// tables when the cache is off or may not answer this check. Raises 22023 for a malformed
/// or unknown permission.
fn facts_for(user: &str, permission: &str, resource: Option<&str>) -> Found {
    // Only a well-formed permission is ever looked up in the tables (and so cached).
    let parse = || {
        permission::parse(permission).or_raise();
    };
    let found = cache::lookup(user, permission, resource, parse).unwrap_or_else(|| {
        parse();
        Found::read(cache::load_for_check(user, permission, resource))
    });
    if !found.facts.known_permission {
        require_known_permission(permission);
    }
    found
}

/// What one call site of a check (one expression in a query) keeps between its calls, in
/// `flinfo->fn_extra`: its arguments' types, resolved once, and the last user and
/// permission it checked with their cached facts, used again (one comparison instead of
/// the cache's lookups) while the cache may answer and they stay current. Per row, a
/// check then reads its ids without allocating, compares two strings and probes one map.
pub(super) struct Site {
    types: Vec<pg_sys::Oid>,
    last: Option<Remembered>,
}

struct Remembered {
    user: UserKey,
    permission: String,
    facts: Rc<Facts>,
    generation: u64,
    /// For authz_can with a key principal: what the key allows of this permission.
    key: Cell<Option<KeyMemo>>,
    /// The answer for every resource, when the facts give one (Facts::constant_answer).
    constant: Option<bool>,
    /// When no override expires, the answer for a resource without its own override
    /// (Facts::timeless_default): an integer resource is then decided by one probe.
    timeless_default: Option<bool>,
    /// Where the last integer resource was among the facts' (Facts::timeless_answer).
    near: Cell<usize>,
}

/// Whether a key's scopes cover a call site's permission and the key is not revoked, as read
/// at a generation of the keys' cache (context.rs), and when it expires.
#[derive(Clone, Copy)]
pub(super) struct KeyMemo {
    pub key_id: [u8; 16],
    pub generation: u64,
    pub covered: bool,
    pub expires_at: Option<i64>,
}

/// A user id as a call site last saw it (an integer is compared as one: nothing formatted).
enum UserKey {
    Integer(i64),
    Text(String),
}

impl UserKey {
    fn of(id: Id) -> Self {
        match id {
            Id::Integer(n) => UserKey::Integer(n),
            Id::Text(s) => UserKey::Text(s.to_string()),
        }
    }

    /// The same id given the same way (the same id given otherwise only misses the memo).
    fn is(&self, id: Id) -> bool {
        match (self, id) {
            (UserKey::Integer(a), Id::Integer(b)) => *a == b,
            (UserKey::Text(a), Id::Text(b)) => a == b,
            _ => false,
        }
    }
}

impl Site {
    /// The call site of this call.
    ///
    /// # Safety
    /// `fcinfo` must be the call's own, of a function that uses `fn_extra` for nothing else.
    pub(super) unsafe fn of<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a mut Site {
        // SAFETY: fn_extra is ours (above); fn_mcxt lives as long as the FmgrInfo, and
        // drops the Site when it is deleted.
        unsafe {
            let flinfo = (*fcinfo).flinfo;
            if (*flinfo).fn_extra.is_null() {
                let types = (0..(*fcinfo).nargs as i32)
                    .map(|n| match pg_sys::get_fn_expr_argtype(flinfo, n) {
                        pg_sys::InvalidOid => pg_sys::InvalidOid,
                        oid => id_type(oid),
                    })
                    .collect();
                let site = PgMemoryContexts::For((*flinfo).fn_mcxt).leak_and_drop_on_delete(Site { types, last: None });
                (*flinfo).fn_extra = site.cast();
            }
            &mut *(*flinfo).fn_extra.cast::<Site>()
        }
    }

    /// The call site of this call if it remembers a check (no allocation, no error).
    ///
    /// # Safety
    /// As `of`.
    pub(super) unsafe fn remembering<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Option<&'a Site> {
        // SAFETY: fn_extra holds a Site or nothing (of).
        unsafe { (*(*fcinfo).flinfo).fn_extra.cast::<Site>().as_ref() }.filter(|site| site.last.is_some())
    }

    /// Id argument `n` if it reads without an error or allocation (ids::inline_id): Some(None)
    /// for NULL or not passed, None when it does not read so.
    fn inline_id<'a>(&self, args: &'a Args, n: usize) -> Option<Option<Id<'a>>> {
        match args.datum(n) {
            None => Some(None),
            // SAFETY: the type is the one the call passed, read once from the parse tree.
            Some(datum) => unsafe { ids::inline_id(datum, self.types[n]) }.map(Some),
        }
    }

    /// Whether `user` holds the permission of argument `permission` on the resource of the
    /// argument after it, if the site remembers that user and permission, and their facts
    /// may answer without looking at anything (cache::current_without_looking); None when
    /// `allowed` must answer. Counts nothing, raises nothing.
    pub(super) fn remembered(&self, args: &Args, user: Id, permission: usize) -> Option<bool> {
        let last = self.last.as_ref()?;
        // SAFETY: the permission is text.
        let permission_bytes = unsafe { ids::inline_bytes(args.datum(permission)?) }?;
        let same = last.user.is(user) && permission_bytes == last.permission.as_bytes();
        if !same || !cache::current_without_looking(last.generation) {
            return None;
        }
        match last.constant {
            // Whatever the resource: it need not be read, only be of a type read without
            // an error.
            Some(answer) if self.types.get(permission + 1).is_none_or(|&t| ids::never_fails(t)) => Some(answer),
            _ => {
                let resource = permission + 1;
                // An integer resource of facts where nothing expires: one probe.
                let integer = || ids::integer(args.datum(resource)?, *self.types.get(resource)?);
                match last.timeless_default.and_then(|default| Some((default, integer()?))) {
                    Some((default, id)) => Some(last.facts.timeless_answer(id, default, &last.near)),
                    None => Some(evaluate(&last.facts, self.inline_id(args, resource)?).allowed),
                }
            }
        }
    }

    /// What the site remembers about a key principal's key and its permission.
    pub(super) fn key_memo(&self) -> Option<KeyMemo> {
        self.last.as_ref()?.key.get()
    }

    /// Remembers that for the user and permission the site remembers (if any).
    pub(super) fn set_key_memo(&self, memo: Option<KeyMemo>) {
        if let Some(last) = &self.last {
            last.key.set(memo);
        }
    }

    /// Id argument `n` (None: NULL or not passed); raises 22023 for an unsupported type.
    pub(super) fn id<'a>(&self, args: &'a Args, n: usize, parameter: &str) -> Option<IdRef<'a>> {
        let datum = args.datum(n)?;
        // SAFETY: the type is the one the call passed, read once from the parse tree.
        Some(unsafe { id_ref(parameter, datum, self.types[n]) }.or_raise())
    }

    /// Whether the user holds the permission on the resource (None: the type level); the
    /// caller counts the answer.
    pub(super) fn allowed(&mut self, user: Id, permission: Option<&str>, resource: Option<Id>) -> bool {
        let Some(permission) = permission else {
            return false;
        };
        let remembered = self.last.as_ref().filter(|r| {
            r.user.is(user) && r.permission == permission && cache::still_current(r.generation)
        });
        let allowed = match remembered {
            Some(r) => evaluate(&r.facts, resource).allowed,
            None => {
                let found = facts_for(&user.text(), permission, resource.map(|r| r.text()).as_deref());
                let allowed = evaluate(&found.facts, resource).allowed;
                self.last = found.generation.map(|generation| Remembered {
                    user: UserKey::of(user),
                    permission: permission.to_string(),
                    constant: found.facts.constant_answer(),
                    timeless_default: found.facts.timeless_default(),
                    near: Cell::new(0),
                    facts: found.facts,
                    generation,
                    key: Cell::new(None),
                });
                allowed
            }
        };
        allowed
    }
}

/// authz_check, with or without a resource (the resource-type level): the user is argument 0.
fn check(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: pgrx passes the call's own fcinfo, and fn_extra is used by nothing else.
    let (args, site) = unsafe { (Args::new(fcinfo), Site::of(fcinfo)) };
    let Some(user) = site.id(&args, 0, "user_id") else {
        return false;
    };
    let resource = site.id(&args, 2, "resource_id");
    let allowed = site.allowed(user.id(), args.get(1), resource.as_ref().map(IdRef::id));
    count(allowed);
    allowed
}

/// authz_check, both forms, as PostgreSQL calls it (sql/api.sql): see `fast_or_guarded`.
///
/// # Safety
/// Called by PostgreSQL with the call's own `fcinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn authz_check_fast(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the call's own fcinfo, and authz_check's pgrx-generated function.
    unsafe { fast_or_guarded(fcinfo, remembered_check, authz_check_wrapper) }
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_authz_check_fast() -> &'static pg_sys::Pg_finfo_record {
    &V1
}

/// The calling convention of the fast entry points (fmgr's "version 1").
pub(super) static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };

/// A check per row, as fast as it can be: a row whose call site remembers its user and
/// permission, with nothing committed since, is answered by `fast`, without pgrx's guard
/// around each call (a setjmp and its bookkeeping: half the cost of such a check); any
/// other call goes to the `guarded` function, which does everything. Nothing `fast` does
/// can raise an error — it reads the arguments (integers and text stored inline), shared
/// counters and Rust memory — and a panic in it takes the guarded way as well.
///
/// # Safety
/// `fcinfo` is the call's own; `guarded` is the pgrx function of the same SQL function.
pub(super) unsafe fn fast_or_guarded(
    fcinfo: pg_sys::FunctionCallInfo,
    fast: unsafe fn(pg_sys::FunctionCallInfo) -> Option<bool>,
    guarded: unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
) -> pg_sys::Datum {
    // A plain value before the guarded call: a PostgreSQL error there ends in a longjmp
    // across this frame, which must have nothing left to drop (a caught panic's payload).
    // SAFETY: as the caller promises.
    let answer = std::panic::catch_unwind(|| unsafe { fast(fcinfo) }).ok().flatten();
    match answer {
        Some(allowed) => {
            stats::bump_all([Counter::CacheHits, if allowed { Counter::Allows } else { Counter::Denies }]);
            pg_sys::Datum::from(allowed)
        }
        None => unsafe { guarded(fcinfo) },
    }
}

/// authz_check's answer from what its call site remembers (`Site::remembered`).
///
/// # Safety
/// `fcinfo` is the call's own.
unsafe fn remembered_check(fcinfo: pg_sys::FunctionCallInfo) -> Option<bool> {
    // SAFETY: the call's own fcinfo.
    let (site, args) = unsafe { (Site::remembering(fcinfo)?, Args::new(fcinfo)) };
    let user = site.inline_id(&args, 0)??;
    site.remembered(&args, user, 1)
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
    // Facts read by explain() keep every grant id.
    let id = |g: Override| g.grant_id.map_or("?".to_string(), |id| id.to_string());
    match (d.decided_by, d.grant) {
        (DecidedBy::Resource, Some(g)) => format!(
            "{verdict} by override {} ({}) on this resource", id(g), effect_word(g.effect)
        ),
        (DecidedBy::ResourceType, Some(g)) => format!(
            "{verdict} by override {} ({}) on every resource of the type", id(g), effect_word(g.effect)
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

/// Both forms of authz_check (with and without a resource), guarded by pgrx; SQL calls
/// authz_check_fast, which comes here for what it does not answer itself.
#[pg_extern(sql = false)]
fn authz_check(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    check(fcinfo)
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
    facts_for(&user, permission, None);
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
    let row = match ids(args.id(0), args.get(1), args.id(2)) {
        Some((user, permission, resource)) => {
            let answer = explain(user, permission, resource);
            let d = answer.decision;
            count(d.allowed);
            (
                d.allowed,
                d.decided_by.as_str().to_string(),
                answer.role.clone(),
                d.grant.and_then(|g| g.grant_id),
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
    let Some((user, permission, resource)) = ids(args.id(0), permission, args.id(2)) else {
        raise(Error::NullValue { parameter: if permission.is_none() { "permission" } else { "user_id" } });
    };
    let facts = facts_for(&user, permission, resource.as_deref()).facts;
    if evaluate(&facts, resource.as_deref().map(Id::Text)).allowed {
        count(true);
        return;
    }
    // Denied: read again with what explains it (a grant committed since counts).
    let answer = explain(user, permission, resource);
    count(answer.decision.allowed);
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
