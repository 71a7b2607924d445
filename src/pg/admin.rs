//! The mutators and listings. Each turns its id arguments into canonical text and calls
//! the internal function of sql/internal.sql that does the work and writes the audit row,
//! as the extension owner (see owner.rs). EXECUTE on these is revoked from PUBLIC.

use super::args::Args;
use super::context::current_user;
use super::ids::{optional_id_text, required_id_text};
use super::owner::{as_owner, caller_role_name};
use super::report::OrRaise;
use crate::core::error::Error;
use crate::core::ids::validate_for_storage;
use crate::core::permission;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::AnyElement;

/// Runs `SELECT authz.<function>(args..., actor, db_role)` as the owner and hands the result
/// to `read`. The actor (the application user responsible: the one given, else the
/// transaction's principal) goes into the audit log.
fn invoke<R>(
    function: &str,
    mut args: Vec<DatumWithOid<'_>>,
    actor: Option<String>,
    read: impl FnOnce(pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<R>,
) -> R {
    // 25006 in a read-only transaction and on a hot standby, before anything tries to take
    // a transaction id (which on a standby is an internal error).
    let name = std::ffi::CString::new(format!("authz.{function}")).expect("a function name");
    // SAFETY: raises a PostgreSQL error or returns.
    unsafe { pgrx::pg_sys::PreventCommandIfReadOnly(name.as_ptr()) };
    args.push(actor.or_else(current_user).into());
    args.push(caller_role_name().into());
    let sql = format!("SELECT authz.{function}({})", placeholders(args.len()));
    as_owner(|| {
        Spi::connect_mut(|client| read(client.update(sql.as_str(), Some(1), &args)?))
            .expect("internal authz functions report errors as SQL errors")
    })
}

/// `invoke` for a function that returns one value.
pub(super) fn call<T: FromDatum + IntoDatum>(function: &str, args: Vec<DatumWithOid<'_>>, actor: Option<String>) -> Option<T> {
    invoke(function, args, actor, |table| table.first().get_one::<T>())
}

/// `invoke` for a function that returns nothing.
fn execute(function: &str, args: Vec<DatumWithOid<'_>>, actor: Option<String>) {
    invoke(function, args, actor, |_| Ok(()))
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Runs `SELECT * FROM authz.<function>(args...)` as the owner and maps its rows.
pub(super) fn rows<R>(function: &str, args: &[DatumWithOid<'_>], read: impl Fn(&pgrx::spi::SpiHeapTupleData) -> R) -> Vec<R> {
    let sql = format!("SELECT * FROM authz.{function}({})", placeholders(args.len()));
    as_owner(|| {
        Spi::connect(|client| client.select(sql.as_str(), None, args).map(|table| table.map(|row| read(&row)).collect()))
            .expect("internal authz functions report errors as SQL errors")
    })
}

pub(super) fn required<'a>(parameter: &'static str, value: Option<&'a str>) -> &'a str {
    value.ok_or(Error::NullValue { parameter }).or_raise()
}

fn required_permission(value: Option<&str>) -> &str {
    let permission = required("permission", value);
    permission::parse(permission).or_raise();
    permission
}

pub(super) fn stored_user(user_id: Option<AnyElement>) -> String {
    let user = required_id_text("user_id", user_id).or_raise();
    validate_for_storage("user_id", &user).or_raise();
    user
}

fn stored_resource(resource_id: Option<AnyElement>) -> Option<String> {
    let resource = optional_id_text("resource_id", resource_id).or_raise();
    if let Some(r) = &resource {
        validate_for_storage("resource_id", r).or_raise();
    }
    resource
}

#[pg_extern(sql = false)]
fn authz_grant(fcinfo: pg_sys::FunctionCallInfo) -> i64 {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let user = stored_user(args.id(0));
    let permission = required_permission(args.get(1));
    let resource = stored_resource(args.id(2));
    let expires_at: Option<TimestampWithTimeZone> = args.get(3);
    let effect = if args.passed(4) { required("effect", args.get(4)) } else { "allow" };
    let granted_by = optional_id_text("granted_by", args.id(5)).or_raise();
    call::<i64>(
        "grant_override",
        vec![user.into(), permission.into(), resource.into(), expires_at.into(), effect.into()],
        granted_by,
    )
    .expect("grant_override returns the grant id")
}

/// Many overrides in one all-or-nothing call (sql/internal.sql, grant_bulk); how many.
#[pg_extern(sql = false)]
fn authz_grant_bulk(fcinfo: pg_sys::FunctionCallInfo) -> i64 {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    // Handed on as it came: grant_bulk reads the jsonb itself (pgrx's JsonB would parse and
    // print it again, and fails with XX000 on valid jsonb that serde_json refuses).
    let grants = args.datum(0).ok_or(Error::NullValue { parameter: "grants" }).or_raise();
    let granted_by = optional_id_text("granted_by", args.id(1)).or_raise();
    // SAFETY: argument 0 is declared jsonb.
    let grants = unsafe { DatumWithOid::new(grants, pg_sys::JSONBOID) };
    call::<i64>("grant_bulk", vec![grants], granted_by).expect("grant_bulk returns a count")
}

#[pg_extern(sql = false)]
fn authz_revoke(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let user = stored_user(args.id(0));
    let permission = required_permission(args.get(1));
    let resource = stored_resource(args.id(2));
    call::<bool>("revoke_override", vec![user.into(), permission.into(), resource.into()], None)
        .expect("revoke_override returns a boolean")
}

#[pg_extern(sql = false)]
fn authz_set_role(user_id: Option<AnyElement>, role: Option<&str>) {
    let user = stored_user(user_id);
    execute("set_role", vec![user.into(), role.into()], None);
}

#[pg_extern(sql = false)]
fn authz_user_role(user_id: Option<AnyElement>) -> Option<String> {
    let user = optional_id_text("user_id", user_id).or_raise()?;
    as_owner(|| {
        Spi::get_one_with_args::<String>(
            "SELECT (SELECT role FROM authz.user_roles WHERE user_id OPERATOR(pg_catalog.=) $1)",
            &[user.into()],
        )
        .expect("a single-row read")
    })
}

#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn authz_user_permissions(
    user_id: Option<AnyElement>,
) -> TableIterator<
    'static,
    (
        name!(permission, String),
        name!(resource_id, Option<String>),
        name!(effect, String),
        name!(source, String),
        name!(expires_at, Option<TimestampWithTimeZone>),
    ),
> {
    let Some(user) = optional_id_text("user_id", user_id).or_raise() else {
        return TableIterator::new(std::iter::empty());
    };
    let found = rows("user_permissions", &[user.into()], |row| {
        (
            row.get::<String>(1).ok().flatten().unwrap_or_default(),
            row.get::<String>(2).ok().flatten(),
            row.get::<String>(3).ok().flatten().unwrap_or_default(),
            row.get::<String>(4).ok().flatten().unwrap_or_default(),
            row.get::<TimestampWithTimeZone>(5).ok().flatten(),
        )
    });
    TableIterator::new(found)
}

#[pg_extern(sql = false)]
fn authz_role_permissions(role: Option<&str>) -> SetOfIterator<'static, String> {
    let role = required("role", role);
    as_owner(|| {
        Spi::run_with_args("SELECT authz.require_known_role($1)", &[role.into()]).expect("raises on error")
    });
    let found = rows("role_defaults", &[role.into()], |row| row.get::<String>(1).ok().flatten().unwrap_or_default());
    SetOfIterator::new(found)
}

#[pg_extern(sql = false)]
fn authz_init_role_permissions() {
    execute("init_role_permissions", vec![], None);
}

#[pg_extern(sql = false)]
fn authz_role_permission_add(role: Option<&str>, permission: Option<&str>) {
    let role = required("role", role);
    let permission = required_permission(permission);
    execute("role_permission_add", vec![role.into(), permission.into()], None);
}

#[pg_extern(sql = false)]
fn authz_role_permission_remove(role: Option<&str>, permission: Option<&str>) {
    let role = required("role", role);
    let permission = required_permission(permission);
    execute("role_permission_remove", vec![role.into(), permission.into()], None);
}

#[pg_extern(sql = false)]
fn authz_define_permission(resource_type: Option<&str>, action: Option<&str>) {
    let resource_type = required("resource_type", resource_type);
    let action = required("action", action);
    execute("define_permission", vec![resource_type.into(), action.into()], None);
}

#[pg_extern(sql = false)]
fn authz_cleanup_expired() -> i64 {
    call::<i64>("cleanup_expired", vec![], None).expect("cleanup_expired returns a count")
}
