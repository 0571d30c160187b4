//! The configuration layer of aurora-rs: a Rust implementation of Pystachio (the typed, templated
//! dictionary language `.aurora` files are written in), the Aurora and Thermos schema on top of
//! it, and the conversion of a job config into `aurora-core` types. It does no network or
//! process I/O; callers hand it text and get values or every problem found.

pub mod job_json;
pub mod process_order;
pub mod pystachio;
pub mod schema;
#[doc(hidden)]
pub mod test_support;
