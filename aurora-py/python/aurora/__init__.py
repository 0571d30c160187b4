"""aurora-rs for Python: `aurora.pystachio` (pystachio 0.8.10 backed by Rust), the Aurora
schema (`aurora.config.schema`) and the `.aurora` loader (`aurora.config.loader`)."""
