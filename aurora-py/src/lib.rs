//! Python for aurora-rs: the `aurora` Python package's native half (a drop-in pystachio whose
//! values live in the Rust engine of `aurora-config`, and the Aurora schema), and, with the
//! `embed` feature, the embedded interpreter that loads `.aurora` files for the `aurora`
//! binary, with a [`ConfigLoader`](aurora_client::commands::ConfigLoader) and client hooks
//! over the config's Python hook objects.
//!
//! This is the only crate that knows pyo3. It holds no config semantics of its own: types,
//! templating, validation and conversion are `aurora-config`'s.

mod native;
mod templates;

#[cfg(feature = "embed")]
mod embed;
#[cfg(feature = "embed")]
mod hook_args;
#[cfg(feature = "embed")]
mod loader;

#[cfg(feature = "embed")]
pub use embed::{ConfigFile, LoadError, LoadErrorKind, load_config};
#[cfg(feature = "embed")]
pub use loader::{PyHook, PythonLoader};
pub use native::_native;
