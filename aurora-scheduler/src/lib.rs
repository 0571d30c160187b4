//! aurora-scheduler (being built).
