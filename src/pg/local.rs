//! Backend-local values in plain statics. PostgreSQL runs a backend's extension code on its
//! one thread (pgrx refuses calls from any other), so the per-row path's state needs no
//! thread-local storage — whose every access from a shared library is a call to
//! `__tls_get_addr` (about 5 % of a cached per-row `authz_can`, measured with perf).

use std::ops::Deref;

/// A value only the backend's thread touches (see above), in a plain `static`.
pub struct Local<T>(T);

// SAFETY: only PostgreSQL's backend thread runs this library's code (see above); no value
// of a `Local` is ever reached from another thread.
unsafe impl<T> Sync for Local<T> {}

impl<T> Local<T> {
    pub const fn new(value: T) -> Self {
        Local(value)
    }
}

impl<T> Deref for Local<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
