//! Id arguments. Every id parameter is declared `"any"` or `text` in SQL (sql/api.sql says
//! why both), so each may be bigint, integer, smallint, uuid, text, varchar, char, citext,
//! a domain over one of them or an untyped literal, independently of the others and
//! without casts; this turns one into the canonical text of core::ids.

use crate::core::error::{Error, Result};
use crate::core::ids::{uuid_text, Id};
use pgrx::pg_sys::{self, Oid};
use pgrx::{AnyElement, FromDatum, Uuid};
use std::ffi::CStr;

/// The canonical text of a non-NULL id argument.
pub fn id_text(parameter: &str, arg: AnyElement) -> Result<String> {
    // SAFETY: the datum has the type the argument says.
    unsafe { id_ref(parameter, arg.datum(), id_type(arg.oid())) }.map(|id| id.id().text().into_owned())
}

/// How an id argument of a type is read: the type itself, or what a domain is over.
/// (A syscache lookup but for the built-in types: the checks resolve it once per call site.)
pub fn id_type(type_oid: Oid) -> Oid {
    match type_oid {
        // Built-in base types (the usual ids): nothing to look up.
        pg_sys::INT8OID | pg_sys::INT4OID | pg_sys::INT2OID | pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::UUIDOID
        | pg_sys::BPCHAROID | pg_sys::UNKNOWNOID => type_oid,
        // SAFETY: a syscache lookup of a type that exists (an argument has it).
        _ => unsafe { pg_sys::getBaseType(type_oid) },
    }
}

/// An id read without an allocation: an integer as its value, text borrowed from the
/// argument, a uuid formatted on the stack (a check per row reads two ids).
pub enum IdRef<'a> {
    Id(Id<'a>),
    Formatted { buf: [u8; 36], len: u8 },
}

impl IdRef<'_> {
    pub fn id(&self) -> Id<'_> {
        match self {
            IdRef::Id(id) => *id,
            // SAFETY: only hex digits and '-' are ever formatted.
            IdRef::Formatted { buf, len } => Id::Text(unsafe { std::str::from_utf8_unchecked(&buf[..*len as usize]) }),
        }
    }
}

/// The canonical text of a non-NULL id datum of type `type_oid` (already through
/// `id_type`).
///
/// # Safety
/// The datum must be a live, non-NULL value of that type.
pub unsafe fn id_ref<'a>(parameter: &str, datum: pg_sys::Datum, type_oid: Oid) -> Result<IdRef<'a>> {
    // SAFETY: called only for types whose datum is a text varlena.
    let text = || unsafe { <&'a str>::from_datum(datum, false).expect("non-NULL text") };
    // SAFETY: each arm reads the datum as the type PostgreSQL says it has.
    unsafe {
        Ok(match type_oid {
            pg_sys::INT8OID => IdRef::Id(Id::Integer(datum.value() as i64)),
            pg_sys::INT4OID => IdRef::Id(Id::Integer(i64::from(datum.value() as i32))),
            pg_sys::INT2OID => IdRef::Id(Id::Integer(i64::from(datum.value() as i16))),
            pg_sys::UUIDOID => {
                let uuid = Uuid::from_datum(datum, false).expect("non-NULL uuid");
                let mut buf = [0; 36];
                let len = uuid_text(uuid.as_bytes(), &mut buf) as u8;
                IdRef::Formatted { buf, len }
            }
            pg_sys::TEXTOID | pg_sys::VARCHAROID => IdRef::Id(Id::Text(text())),
            // An untyped literal ('42') reaches an "any" parameter as a C string.
            pg_sys::UNKNOWNOID => IdRef::Id(Id::Text(
                CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>())
                    .to_str()
                    .map_err(|_| Error::invalid(format!("{parameter} is not valid UTF-8")))?,
            )),
            // char(n): without its padding, as PostgreSQL casts it to text.
            pg_sys::BPCHAROID => IdRef::Id(Id::Text(text().trim_end_matches(' '))),
            other if is_text_like(other) => IdRef::Id(Id::Text(text())),
            other => return Err(unsupported_type(parameter, other)),
        })
    }
}

/// An id of type `type_oid` (through `id_type`) read only if that cannot raise an error or
/// allocate: integers, and text or varchar stored inline and uncompressed, as valid UTF-8.
/// None for anything else.
///
/// # Safety
/// The datum must be a live, non-NULL value of that type.
pub unsafe fn inline_id<'a>(datum: pg_sys::Datum, type_oid: Oid) -> Option<Id<'a>> {
    match type_oid {
        // SAFETY: a text varlena (the type says so).
        pg_sys::TEXTOID | pg_sys::VARCHAROID => std::str::from_utf8(unsafe { inline_bytes(datum) }?).ok().map(Id::Text),
        _ => integer(datum, type_oid).map(Id::Integer),
    }
}

/// The value of an integer datum of type `type_oid`; None for other types.
#[inline]
pub fn integer(datum: pg_sys::Datum, type_oid: Oid) -> Option<i64> {
    match type_oid {
        pg_sys::INT8OID => Some(datum.value() as i64),
        pg_sys::INT4OID => Some(i64::from(datum.value() as i32)),
        pg_sys::INT2OID => Some(i64::from(datum.value() as i16)),
        _ => None,
    }
}

/// Whether an id of this type (through `id_type`) is always read without an error: the
/// integers.
pub fn never_fails(type_oid: Oid) -> bool {
    matches!(type_oid, pg_sys::INT8OID | pg_sys::INT4OID | pg_sys::INT2OID)
}

/// The bytes of a varlena with a 1-byte header, or a 4-byte header and no compression
/// (postgres.h's varatt macros, little-endian layout); None for any other.
///
/// # Safety
/// `datum` is a live varlena.
pub unsafe fn inline_bytes<'a>(datum: pg_sys::Datum) -> Option<&'a [u8]> {
    let p = datum.cast_mut_ptr::<u8>().cast_const();
    if cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: the header is read first, and says how many bytes follow.
    let bytes = unsafe {
        let first = *p;
        match (first & 0x01 == 0x01, first & 0x03) {
            // 1-byte header (0x01 alone is an external pointer: not inline).
            (true, _) if first != 0x01 => std::slice::from_raw_parts(p.add(1), (first >> 1) as usize - 1),
            // 4-byte header, uncompressed.
            (false, 0x00) => {
                let size = (p.cast::<u32>().read_unaligned() >> 2) as usize;
                std::slice::from_raw_parts(p.add(4), size.checked_sub(4)?)
            }
            _ => return None,
        }
    };
    Some(bytes)
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
