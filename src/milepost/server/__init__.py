"""HTTP servers: the feature server (and, later, the REST API and web UI)."""
