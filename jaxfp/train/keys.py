"""Random keys named after what they are for: a stage's key comes from its name, never from a
hand-numbered salt, so adding rounds, groups or stages cannot make two of them collide."""

from __future__ import annotations

import zlib

import jax


def named_key(key: jax.Array | int, *names: str | int) -> jax.Array:
    """`key` (or `jax.random.key(key)`) folded with each name in turn (CRC-32 of its text)."""
    out = jax.random.key(key) if isinstance(key, int) else key
    for name in names:
        out = jax.random.fold_in(out, zlib.crc32(str(name).encode()))
    return out


def named_seed(seed: int, *names: str | int) -> list[int]:
    """A numpy seed sequence entropy for the same naming: `np.random.default_rng(named_seed(...))`."""
    return [int(seed), *(zlib.crc32(str(name).encode()) for name in names)]


def named_int(seed: int, *names: str | int) -> int:
    """A non-negative 31-bit integer seed for `seed` and the names (for APIs that take an int)."""
    return zlib.crc32(":".join(map(str, (seed, *names))).encode()) & 0x7FFFFFFF
