"""Prefect flows and the ``radio-ddrm`` command line."""
