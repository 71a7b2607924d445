//! The one error type of authz_ext and its SQLSTATEs (docs/guide.md, Permissions: Errors).
//! Messages say what was wrong and what is valid; they never contain a secret.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 22023 invalid_parameter_value: unknown or malformed permission, role, scope, ...
    InvalidParameter { message: String, hint: Option<String> },
    /// 22004 null_value_not_allowed: a mutator was given NULL where it needs a value.
    NullValue { parameter: &'static str },
    /// 42501 insufficient_privilege: a denied authz_require.
    Denied { message: String },
    /// 28000 invalid_authorization_specification: authz_authenticate with a token that is
    /// not a valid key; `status` is what api_key_validate would say. Never the token.
    Unauthenticated { status: &'static str },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidParameter { message: message.into(), hint: None }
    }

    pub fn invalid_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::InvalidParameter { message: message.into(), hint: Some(hint.into()) }
    }

    /// The five-character SQLSTATE this error is reported with.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::InvalidParameter { .. } => "22023",
            Error::NullValue { .. } => "22004",
            Error::Denied { .. } => "42501",
            Error::Unauthenticated { .. } => "28000",
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::InvalidParameter { hint, .. } => hint.as_deref(),
            Error::Unauthenticated { status: "malformed" } => {
                Some("An authz_ext API key is azk_ followed by 38 letters and digits.")
            }
            Error::Unauthenticated { .. } => Some("Create a new key with api_key_create()."),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParameter { message, .. } | Error::Denied { message } => {
                f.write_str(message)
            }
            Error::NullValue { parameter } => write!(f, "{parameter} must not be NULL"),
            Error::Unauthenticated { status } => write!(f, "API key rejected: {status}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
