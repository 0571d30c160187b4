//! aurora-py (being built).
