//! Arguments read from the call itself, for the functions sql/api.sql declares at several
//! numbers of arguments over one C function (an id mix given without the trailing
//! arguments): an argument not passed reads as NULL, as its default would.

use pgrx::pg_sys;
use pgrx::{AnyElement, FromDatum};

pub struct Args(pg_sys::FunctionCallInfo);

impl Args {
    /// # Safety
    /// `fcinfo` must be the call's own, as pgrx passes it to a `#[pg_extern]` function.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo) -> Self {
        Args(fcinfo)
    }

    /// Argument `n` (0-based); None when NULL or not passed.
    pub fn datum(&self, n: usize) -> Option<pg_sys::Datum> {
        // SAFETY: fcinfo is the call's (new), and only its first nargs arguments are read.
        unsafe {
            let fcinfo = &*self.0;
            let args = fcinfo.args.as_slice(fcinfo.nargs as usize);
            args.get(n).filter(|a| !a.isnull).map(|a| a.value)
        }
    }

    /// Whether the call passed argument `n` (0-based), NULL or not.
    pub fn passed(&self, n: usize) -> bool {
        // SAFETY: fcinfo is the call's (new).
        n < unsafe { (*self.0).nargs } as usize
    }

    /// Argument `n` (0-based) as `T`; None when NULL or not passed.
    pub fn get<T: FromDatum>(&self, n: usize) -> Option<T> {
        let datum = self.datum(n)?;
        // SAFETY: the caller names the type the SQL declaration gives argument n.
        unsafe { T::from_datum(datum, false) }
    }

    /// Id argument `n` (0-based), of whatever type this call passed; None when NULL or not
    /// passed.
    pub fn id(&self, n: usize) -> Option<AnyElement> {
        let datum = self.datum(n)?;
        // SAFETY: the type is the one the call passed (the parse tree's), as for "any".
        unsafe {
            let type_oid = pg_sys::get_fn_expr_argtype((*self.0).flinfo, n as i32);
            AnyElement::from_polymorphic_datum(datum, false, type_oid)
        }
    }
}
