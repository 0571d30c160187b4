"""The Aurora configuration layer: the schema (`aurora.config.schema`) and the `.aurora`
loader (`aurora.config.loader`)."""
