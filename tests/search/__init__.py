"""Tuning logic: the search, the model-level budget, transfer between shares, planning, Winograd variants."""
