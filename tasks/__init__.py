"""Prefect tasks: the I/O around :mod:`ddrm` (stores, checkpoints, Ray)."""
