"""The command line: one-line errors, the db commands, report, the benchmark scripts."""
