//! End-to-end tests of aurora-rs (see e2e/).
