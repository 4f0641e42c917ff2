"""Process and cluster runtime: the local environment (loopback, no telemetry) and Ray connection and sizing."""
