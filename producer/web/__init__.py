"""The HTTP API (`editqueue api`): routes over the producer's Python API, and the gallery."""
