//! Reading and changing the owner-only `authz` tables on behalf of any caller.
//!
//! The public functions are plain C functions (no SECURITY DEFINER, no SET search_path, so
//! no per-call GUC save/restore). Around their table access they switch the current user to
//! the owner of schema `authz` the way SECURITY DEFINER does, and switch back afterwards,
//! also on error. Safety rests on two rules: the SQL run while switched is fixed text in
//! this crate, with every table, type, function and operator schema-qualified (or inside an
//! internal function with a pinned search_path); and no caller-supplied value is ever part
//! of that text, only a bound parameter.

use pgrx::pg_sys;
use std::ffi::CStr;

/// Runs `f` as the owner of schema `authz`.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let (saved_user, saved_context) = current_user_and_context();
    let _restore = RestoreUser { user: saved_user, context: saved_context };
    // SAFETY: the same call fmgr_security_definer makes; `_restore` undoes it on return
    // and while unwinding from an ERROR.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            schema_owner(),
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    f()
}

/// The name of the role calling us, for the audit log.
pub fn caller_role_name() -> String {
    // SAFETY: GetUserId is always valid in a backend; GetUserNameFromId errors on a
    // dropped role rather than returning NULL.
    unsafe {
        CStr::from_ptr(pg_sys::GetUserNameFromId(pg_sys::GetUserId(), false))
            .to_string_lossy()
            .into_owned()
    }
}

fn current_user_and_context() -> (pg_sys::Oid, i32) {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: plain out-parameters.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    (user, context)
}

fn schema_owner() -> pg_sys::Oid {
    // SAFETY: get_namespace_oid errors if the schema is missing (missing_ok = false); the
    // syscache tuple is released before returning.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"authz".as_ptr(), false);
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            pg_sys::Datum::from(schema),
        );
        if tuple.is_null() {
            pgrx::error!("schema authz disappeared while in use");
        }
        let form = pg_sys::GETSTRUCT(tuple) as *const pg_sys::FormData_pg_namespace;
        let owner = (*form).nspowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}

struct RestoreUser {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for RestoreUser {
    fn drop(&mut self) {
        // SAFETY: restores exactly what as_owner saved.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}
