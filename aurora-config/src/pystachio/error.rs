//! Errors of the template engine. Messages reproduce pystachio's where it has one.

use thiserror::Error;

/// A reference address that does not follow the grammar; the message is pystachio's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct InvalidRef(pub String);

/// A failure while evaluating a value (interpolating, rendering, comparing).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A value cannot be converted to its type: `Cannot coerce 'abc' to Integer`.
    #[error("{0}")]
    Coercion(String),
    /// A template kept producing new references: a cycle or unbounded growth.
    #[error("Unable to interpolate {0}!  Maximum replacements reached.")]
    Uninterpolatable(String),
    /// A `{{...}}` tag whose content is not a reference.
    #[error(transparent)]
    InvalidRef(#[from] InvalidRef),
    /// A number that does not fit (pystachio raises a bare `OverflowError` here).
    #[error("{0}")]
    Overflow(String),
}

impl EvalError {
    pub(crate) fn coercion(src: &str, ty: &str, detail: Option<String>) -> EvalError {
        match detail {
            Some(d) => EvalError::Coercion(format!("Cannot coerce '{src}' to {ty}: {d}")),
            None => EvalError::Coercion(format!("Cannot coerce '{src}' to {ty}")),
        }
    }

    /// Whether `check()` turns this error into a failed type check instead of raising it.
    pub fn is_caught_by_check(&self) -> bool {
        matches!(
            self,
            EvalError::Coercion(_) | EvalError::Uninterpolatable(_)
        )
    }
}

/// A failure while constructing a value or a type from input data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A struct was given a field its schema does not have.
    #[error("Unknown schema attribute {0}")]
    UnknownAttribute(String),
    /// A struct was given something that is not a mapping.
    #[error("{0}")]
    NotMapping(String),
    /// A list was given something that is not a sequence.
    #[error("ListContainer expects an iterable, got {0}")]
    NotSequence(String),
    /// A map was given something that is neither a mapping nor pairs.
    #[error("Unexpected input to MapContainer: {0}")]
    NotMap(String),
    /// An enum value outside the enumeration.
    #[error("{ty} only accepts the following values: {values}")]
    EnumValue {
        /// The enum's type name.
        ty: String,
        /// The allowed values, comma separated.
        values: String,
    },
    /// An environment was given a value it cannot hold.
    #[error(
        "Environment values must be strings, numbers, Objects or other Environments. Got {0} instead."
    )]
    EnvValue(String),
    /// A serialized type signature that cannot be loaded.
    #[error("invalid type signature: {0}")]
    BadSignature(String),
    /// Input JSON that does not parse.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Evaluation failed while building (e.g. an enum value that cannot be rendered).
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A reference address that does not parse.
    #[error(transparent)]
    InvalidRef(#[from] InvalidRef),
}

/// Why [`Value::find`](super::Value::find) found nothing. The messages are pystachio's
/// (`Namable.NamingError`, `Namable.NotFound`, `Namable.Unnamable`, and the `IndexError` of a
/// negative list index before the start).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FindError {
    /// The component has the wrong kind for the object (`[0]` on a struct, `.x` on a list, an
    /// index that is not an integer on a list).
    #[error("Cannot dereference object {ty} by {component}")]
    Naming {
        /// The type name of the object searched.
        ty: String,
        /// The component, as `.name` or `[index]`.
        component: String,
    },
    /// The object has nothing under the component (an unset or unknown field, an index past
    /// the end, a missing key).
    #[error("Could not find {name} in object {ty}")]
    NotFound {
        /// The component's text, without `.` or brackets.
        name: String,
        /// The type name of the object searched.
        ty: String,
    },
    /// The reference goes on into a value that cannot be searched (a scalar or a choice).
    #[error("Object is not indexable: {0}")]
    Unnamable(String),
    /// A negative list index before the first element.
    #[error("tuple index out of range")]
    IndexOutOfRange,
    /// Comparing a map key failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
}
