"""Rendering results: PNG figures and Prefect artifact helpers."""
