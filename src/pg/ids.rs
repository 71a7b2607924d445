//! Id arguments. Every id parameter is declared `"any"` in SQL, so each may be bigint,
//! integer, smallint, uuid, text, varchar or an untyped literal, independently of the
//! others and without casts; this turns one into the canonical text of core::ids.

use crate::core::error::{Error, Result};
use crate::core::ids::uuid_text;
use pgrx::pg_sys::{self, Oid};
use pgrx::{AnyElement, Uuid};
use std::ffi::CStr;

/// The canonical text of a non-NULL id argument.
pub fn id_text(parameter: &str, arg: AnyElement) -> Result<String> {
    // SAFETY: each arm reads the datum as the type PostgreSQL says it has.
    unsafe {
        Ok(match arg.oid() {
            pg_sys::INT8OID => (arg.datum().value() as i64).to_string(),
            pg_sys::INT4OID => (arg.datum().value() as i32).to_string(),
            pg_sys::INT2OID => (arg.datum().value() as i16).to_string(),
            pg_sys::UUIDOID => uuid_text(AnyElement::into::<Uuid>(&arg).expect("non-NULL uuid").as_bytes()),
            pg_sys::TEXTOID | pg_sys::VARCHAROID => AnyElement::into::<String>(&arg).expect("non-NULL text"),
            // An untyped literal ('42') reaches an "any" parameter as a C string.
            pg_sys::UNKNOWNOID => CStr::from_ptr(arg.datum().cast_mut_ptr::<std::ffi::c_char>())
                .to_str()
                .map_err(|_| Error::invalid(format!("{parameter} is not valid UTF-8")))?
                .to_string(),
            other => return Err(unsupported_type(parameter, other)),
        })
    }
}

/// `id_text` for an optional argument: NULL stays None.
pub fn optional_id_text(parameter: &str, arg: Option<AnyElement>) -> Result<Option<String>> {
    arg.map(|a| id_text(parameter, a)).transpose()
}

/// `id_text` for an argument a mutator needs: NULL is 22004.
pub fn required_id_text(parameter: &'static str, arg: Option<AnyElement>) -> Result<String> {
    id_text(parameter, arg.ok_or(Error::NullValue { parameter })?)
}

fn unsupported_type(parameter: &str, type_oid: Oid) -> Error {
    // SAFETY: format_type_be accepts any type oid and returns a palloc'd C string.
    let type_name = unsafe { CStr::from_ptr(pg_sys::format_type_be(type_oid)) };
    Error::invalid_with_hint(
        format!("{parameter} cannot be of type {}", type_name.to_string_lossy()),
        "Ids are bigint, integer, smallint, uuid or text.",
    )
}
