"""Is tuning worth it: a model run at a share and checked against the engine a user already
has (`run`, `reference`, `baselines`), each share in a fresh process (`at_shares`), where an
answer diverges (`bisect`) and the figures `tunesvc report` draws (`report_data`)."""
