"""Padded sizes: counts rounded up so that similar counts share one compiled program."""

from __future__ import annotations


def rounded(count: int, multiple: int) -> int:
    """`count` rounded up to a multiple of `multiple` or of 1/8 of its power of two, whichever is
    larger, so similar sizes share one compilation (<= 12.5 % padding)."""
    step = max(multiple, 2 ** max(int(count).bit_length() - 4, 0))
    return max(-(-count // step) * step, step)
