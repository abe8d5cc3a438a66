"""The verifier's configuration, read once per process: hash-key, default scheme, argon2id layer.

Kept apart from ``hashes`` (which knows nothing of Flask) and picklable, so
worker processes (`identity legacy layer`) rebuild the same context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import argon2

from identity.config import legacy_hash_key
from identity.legacy import hashes


@dataclass(frozen=True)
class LegacySettings:
    hash_key: bytes | None = field(repr=False)  # a secret: never in a repr or a log
    default_scheme: str | None
    layer_time_cost: int = 2
    layer_memory_kib: int = 19456
    layer_parallelism: int = 1

    @classmethod
    def from_config(cls, cfg) -> "LegacySettings":
        settings = cls(
            hash_key=legacy_hash_key(cfg),
            default_scheme=cfg.get("LEGACY_DEFAULT_SCHEME") or None,
            layer_time_cost=int(cfg.get("LEGACY_LAYER_TIME_COST", 2)),
            layer_memory_kib=int(cfg.get("LEGACY_LAYER_MEMORY_KIB", 19456)),
            layer_parallelism=int(cfg.get("LEGACY_LAYER_PARALLELISM", 1)),
        )
        settings.scheme  # a bad default scheme is a start-up error, not a sign-in error
        return settings

    @cached_property
    def scheme(self) -> hashes.Scheme | None:
        return hashes.Scheme.parse(self.default_scheme) if self.default_scheme else None

    @cached_property
    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(time_cost=self.layer_time_cost, memory_cost=self.layer_memory_kib,
                                     parallelism=self.layer_parallelism, hash_len=32, salt_len=16,
                                     type=argon2.Type.ID)

    @cached_property
    def dummy_hash(self) -> str:
        # What an unverifiable record costs instead of a real check: one argon2id at the layer's cost.
        return self.hasher.hash(b"dummy")

    def context(self, salt: str | None = None) -> hashes.Context:
        return hashes.Context(salt=salt, hash_key=self.hash_key, default_scheme=self.scheme,
                              dummy_hash=self.dummy_hash)

    def verify(self, password, encoded: str, salt: str | None = None) -> bool:
        return hashes.verify(password, encoded, self.context(salt))

    def layer(self, encoded: str, salt: str | None = None) -> str:
        return hashes.layer(encoded, self.context(salt), self.hasher)
