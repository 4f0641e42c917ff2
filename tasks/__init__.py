"""Prefect tasks: small typed steps that the flows compose (prepare, train, reconstruct, report)."""
