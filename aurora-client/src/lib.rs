//! aurora-client (being built).
