"""RFC 9162 Merkle tree hashing and inclusion proofs (unstable, internal).

``leaf = H(0x00 || d)``, ``node = H(0x01 || left || right)`` (RFC 9162 §2.1.1); the tree of
``n`` leaves splits at the largest power of two smaller than ``n``. Inclusion proofs are
generated per §2.1.3.1 and verified with the algorithm of §2.1.3.2. ``H`` is the suite hash
(SHA-256, or SHA-384 for cnsa); the envelope batch signature uses these with the signing
digests of a batch as the leaf data ``d``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "MAX_PATH",
    "inclusion_path",
    "leaf_hash",
    "node_hash",
    "root_and_paths",
    "root_from_path",
    "tree_root",
]

#: Bound on an inclusion path: 32 levels cover a batch of 2**32 leaves.
MAX_PATH = 32

HashFactory = Callable[..., Any]


def leaf_hash(h: HashFactory, data: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``MTH({d}) = HASH(0x00 || d)``."""
    return bytes(h(b"\x00" + data).digest())


def node_hash(h: HashFactory, left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``HASH(0x01 || MTH(left) || MTH(right))``."""
    return bytes(h(b"\x01" + left + right).digest())


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(h: HashFactory, leaves: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` over already-hashed leaves; the empty tree is ``HASH()``."""
    if not leaves:
        return bytes(h(b"").digest())
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(h, tree_root(h, leaves[:k]), tree_root(h, leaves[k:]))


def inclusion_path(h: HashFactory, leaves: Sequence[bytes], index: int) -> list[bytes]:
    """``PATH(m, D[n])`` of RFC 9162 §2.1.3.1 over already-hashed leaves, leaf to root order.

    Raises:
        ValueError: ``index`` is outside the tree.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"got index {index}, expected 0 <= index < {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(h, leaves[:k], index), tree_root(h, leaves[k:])]
    return [*inclusion_path(h, leaves[k:], index - k), tree_root(h, leaves[:k])]


def root_and_paths(h: HashFactory, leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's ``PATH(m, D[n])`` in one O(n log n) pass (same split rule).

    Raises:
        ValueError: ``leaves`` is empty.
    """
    if not leaves:
        raise ValueError("got no leaves, expected at least one")
    if len(leaves) == 1:
        return leaves[0], [[]]
    k = _split(len(leaves))
    left, left_paths = root_and_paths(h, leaves[:k])
    right, right_paths = root_and_paths(h, leaves[k:])
    paths = [[*p, right] for p in left_paths] + [[*p, left] for p in right_paths]
    return node_hash(h, left, right), paths


def root_from_path(
    h: HashFactory, leaf: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes | None:
    """Recompute the root from a leaf hash and its path (RFC 9162 §2.1.3.2).

    Returns:
        The root the path leads to, or ``None`` when the path cannot belong to a tree of
        ``size`` leaves at ``index`` (wrong length, index out of range). The caller compares
        the root with a signed one.
    """
    if not 0 <= index < size or len(path) > MAX_PATH:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return None  # §2.1.3.2 step 5: path longer than the tree is tall
        if fn & 1 or fn == sn:
            r = node_hash(h, p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(h, r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None  # path too short
    return r
