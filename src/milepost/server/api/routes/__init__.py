"""One router per capability; paths are relative to ``/api/v1``."""
