//! The Pystachio template engine: typed values, scopes, mustache references and type checks.
//!
//! This reproduces pystachio 0.8.10 (the library `.aurora` files are written against): lazy
//! scalars, `{{ref}}` templates resolved innermost-first and iteratively, the scope order of
//! `bind`/`in_scope` and struct fields, `check()` messages and JSON output. Types are runtime
//! descriptors ([`Type`]) so a Python binding can define structs on the fly; values
//! ([`Value`]) are immutable and share their trees.
//!
//! ```
//! use aurora_config::pystachio::{FieldSpec, Raw, Type};
//! let process = Type::structure("Process", vec![
//!     FieldSpec::required("name", &Type::string()),
//!     FieldSpec::required("cmdline", &Type::string()),
//! ]).unwrap();
//! let p = process
//!     .instantiate(Raw::map([("name", Raw::str("web")), ("cmdline", Raw::str("run {{name}} on {{port}}"))]))
//!     .unwrap()
//!     .bind_pairs([("port", "8080")])
//!     .unwrap();
//! assert_eq!(p.field("cmdline").unwrap().unwrap().as_str(), Some("run web on 8080"));
//! assert!(p.check().unwrap().ok());
//! ```

mod error;
pub mod json;
mod matcher;
mod mustache;
pub mod pyfmt;
mod refs;
mod scope;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use error::{BuildError, EvalError, FindError, InvalidRef};
pub use matcher::{PatternStep, RefPattern};
pub use mustache::{
    MAX_ITERATIONS, ResolveError, Segment, clear_template_cache, join_segments, resolve_text,
    segments,
};
pub use refs::{Component, Ref};
pub use scope::{Env, EnvInput, EnvValue, Scope};
pub use types::{FieldInfo, FieldSpec, Type};
pub use value::{Foreign, Raw, TypeCheck, Value};
