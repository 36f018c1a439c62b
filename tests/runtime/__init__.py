"""Compiled libraries and their deployment; timing."""
