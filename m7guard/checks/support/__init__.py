"""Helpers of the checks: host snapshots, sysctl semantics, evidence, the pytest plugin."""
