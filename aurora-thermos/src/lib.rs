//! aurora-thermos (being built).
