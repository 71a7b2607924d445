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
    /// 42704 undefined_object: a type the relationship model does not define (OpenFGA 2021).
    UndefinedType { message: String },
    /// 42703 undefined_column: a relation the model does not define on its type (OpenFGA
    /// 2022): relations are to types what columns are to tables.
    UndefinedRelation { message: String },
    /// 54001 statement_too_complex: a relationship resolution deeper than OpenFGA's limit
    /// (OpenFGA 2002).
    TooDeep { message: String },
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
            Error::UndefinedType { .. } => "42704",
            Error::UndefinedRelation { .. } => "42703",
            Error::TooDeep { .. } => "54001",
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
            Error::InvalidParameter { message, .. }
            | Error::Denied { message }
            | Error::UndefinedType { message }
            | Error::UndefinedRelation { message }
            | Error::TooDeep { message } => f.write_str(message),
            Error::NullValue { parameter } => write!(f, "{parameter} must not be NULL"),
            Error::Unauthenticated { status } => write!(f, "API key rejected: {status}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<crate::core::fga::eval::EvalError> for Error {
    fn from(e: crate::core::fga::eval::EvalError) -> Self {
        use crate::core::fga::eval::EvalError;
        let message = e.to_string();
        match e {
            EvalError::UnknownType(_) => Error::UndefinedType { message },
            EvalError::UnknownRelation { .. } => Error::UndefinedRelation { message },
            EvalError::TooDeep => Error::TooDeep { message },
            EvalError::InvalidSubject(_) => Error::invalid(message),
        }
    }
}
