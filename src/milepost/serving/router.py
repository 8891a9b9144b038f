"""Routing: which variant answers a request, and whether a shadow gets a copy.

Requests are placed in one of 10,000 buckets by a CRC32 of their routing key (the
``key`` field, else the first row's entity key, else the request id), so the same key
always sees the same variant while the weights stay the same, and a canary at 5% gets
the keys in the first 500 buckets. Shadow mirroring uses a second, independent hash.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from milepost.serving.spec import EndpointSpec, Variant

__all__ = ["BUCKETS", "Router", "bucket"]

BUCKETS = 10_000


def bucket(key: str, salt: str = "") -> int:
    """The bucket of a key (stable across processes and hosts)."""
    return zlib.crc32((salt + key).encode()) % BUCKETS


@dataclass(frozen=True)
class Router:
    """Routing decisions for one spec revision."""

    primary: Variant
    canary: Variant | None
    canary_buckets: int
    shadows: tuple[tuple[Variant, int], ...]

    @classmethod
    def of(cls, spec: EndpointSpec) -> Router:
        """Build the routing table from a spec."""
        canary = next((v for v in spec.variants if v.role == "canary" and v.weight > 0), None)
        return cls(
            primary=spec.primary,
            canary=canary,
            canary_buckets=round((canary.weight if canary else 0) * BUCKETS / 100),
            shadows=tuple(
                (v, round(v.share * BUCKETS))
                for v in spec.variants
                if v.role == "shadow" and v.share > 0
            ),
        )

    def pick(self, key: str) -> Variant:
        """The variant that answers requests with this key."""
        if self.canary is not None and bucket(key) < self.canary_buckets:
            return self.canary
        return self.primary

    def mirrors(self, key: str) -> list[Variant]:
        """The shadow variants that get a copy of this request."""
        return [v for v, n in self.shadows if bucket(key, "shadow:") < n]
