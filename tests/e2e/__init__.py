"""Whole runs: tune then run, resume after faults, Ray cluster jobs."""
