//! Id arguments. Every id parameter is declared `"any"` or `text` in SQL (sql/api.sql says
//! why both), so each may be bigint, integer, smallint, uuid, text, varchar, char, citext,
//! a domain over one of them or an untyped literal, independently of the others and
//! without casts; this turns one into the canonical text of core::ids.

use crate::core::error::{Error, Result};
use crate::core::ids::uuid_text;
use pgrx::pg_sys::{self, Oid};
use pgrx::{AnyElement, FromDatum, Uuid};
use std::ffi::CStr;

/// The canonical text of a non-NULL id argument.
pub fn id_text(parameter: &str, arg: AnyElement) -> Result<String> {
    let datum = arg.datum();
    let text = || {
        // SAFETY: called only for types whose datum is a text varlena.
        unsafe { String::from_datum(datum, false).expect("non-NULL text") }
    };
    // SAFETY: each arm reads the datum as the type PostgreSQL says it has.
    unsafe {
        Ok(match arg.oid() {
            pg_sys::INT8OID => (datum.value() as i64).to_string(),
            pg_sys::INT4OID => (datum.value() as i32).to_string(),
            pg_sys::INT2OID => (datum.value() as i16).to_string(),
            pg_sys::UUIDOID => uuid_text(Uuid::from_datum(datum, false).expect("non-NULL uuid").as_bytes()),
            pg_sys::TEXTOID | pg_sys::VARCHAROID => text(),
            // An untyped literal ('42') reaches an "any" parameter as a C string.
            pg_sys::UNKNOWNOID => CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>())
                .to_str()
                .map_err(|_| Error::invalid(format!("{parameter} is not valid UTF-8")))?
                .to_string(),
            // char(n): without its padding, as PostgreSQL casts it to text.
            pg_sys::BPCHAROID => text().trim_end_matches(' ').to_string(),
            other => match pg_sys::getBaseType(other) {
                // A domain: what it is over.
                base if base != other => return id_text(parameter, AnyElement::from_polymorphic_datum(datum, false, base)
                    .expect("non-NULL")),
                _ if is_text_like(other) => text(),
                _ => return Err(unsupported_type(parameter, other)),
            },
        })
    }
}

/// Whether the type is another text varlena (citext, from the extension of that name): a
/// base type of the string category with a variable length. Only a superuser can create
/// base types, so such a type holds text as text does; an id of it is the text it holds.
fn is_text_like(type_oid: Oid) -> bool {
    // SAFETY: syscache lookups of a type that exists (an argument has it).
    unsafe { pg_sys::TypeCategory(type_oid) as u8 == pg_sys::TYPCATEGORY_STRING && pg_sys::get_typlen(type_oid) == -1 }
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
        "Ids are bigint, integer, smallint, uuid, text, varchar, char or citext, or a domain over one of them.",
    )
}
