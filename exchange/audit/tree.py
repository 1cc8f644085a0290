"""Log-sized Merkle trees: incremental roots, inclusion and consistency proofs (RFC 9162).

Hashing is :mod:`exchange.crypto.merkle` (``leaf = H(0x00 || d)``, ``node = H(0x01 || l || r)``,
RFC 9162 §2.1.1), always SHA-256 for the audit log so checkpoints are ordinary C2SP
tlog-checkpoints. This module adds what a log needs on top of batch signatures:

* :class:`CompactRange` — the root of a growing tree in O(log n) per append (the perfect
  subtrees of the binary decomposition of ``n``, folded right to left);
* :func:`consistency_proof` — RFC 9162 §2.1.4.1 ``PROOF(m, D[n])``;
* :func:`verify_consistency` — RFC 9162 §2.1.4.2;
* :func:`verify_inclusion` — RFC 9162 §2.1.3.2 with a constant-time root comparison.

Verifiers never raise on hostile input: they return ``False``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from exchange.crypto.merkle import (
    inclusion_path,
    leaf_hash,
    node_hash,
    root_from_path,
    tree_root,
)

__all__ = [
    "HASH_SIZE",
    "MAX_PROOF",
    "MAX_TREE_SIZE",
    "CompactRange",
    "consistency_proof",
    "hash_leaf",
    "inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

H: Final = hashlib.sha256
HASH_SIZE: Final = 32
#: A log holds fewer than 2**32 entries: inclusion paths stay within merkle.MAX_PATH.
MAX_TREE_SIZE: Final = 2**32 - 1
#: Bound on a consistency proof: at most 2 * 32 hashes for trees below 2**32 leaves.
MAX_PROOF: Final = 64


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash ``SHA-256(0x00 || data)`` of an encoded entry."""
    return leaf_hash(H, data)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` over leaf hashes; ``SHA-256("")`` for the empty tree."""
    return tree_root(H, leaves)


class CompactRange:
    """The right border of a growing tree: enough to compute its root after every append.

    Holds one hash per set bit of ``size`` (the perfect subtrees, largest first).
    """

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[tuple[int, bytes]] = []  # (height, hash), left to right

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        height, h = 0, leaf
        while self._peaks and self._peaks[-1][0] == height:
            _, left = self._peaks.pop()
            h = node_hash(H, left, h)
            height += 1
        self._peaks.append((height, h))
        self._size += 1

    def root(self) -> bytes:
        """``MTH`` of the leaves appended so far (RFC 9162 §2.1.1 split rule)."""
        if not self._peaks:
            return bytes(H(b"").digest())
        acc = self._peaks[-1][1]
        for _, h in reversed(self._peaks[:-1]):
            acc = node_hash(H, h, acc)
        return acc


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """``PATH(index, D[n])`` (RFC 9162 §2.1.3.1) over the first ``n = len(leaves)`` leaves.

    Raises:
        ValueError: ``index`` is outside the tree.
    """
    return inclusion_path(H, leaves, index)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    # RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)
    n = len(leaves)
    if m == n:
        return [] if complete else [tree_root(H, leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), tree_root(H, leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), tree_root(H, leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """``PROOF(old_size, D[n])`` of RFC 9162 §2.1.4.1, ``n = len(leaves)``.

    Args:
        leaves: leaf hashes of the newer tree.
        old_size: size of the older tree; ``0`` and ``n`` give the empty proof.

    Returns:
        The proof hashes.

    Raises:
        ValueError: ``old_size`` is negative or larger than the tree.
    """
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"got old_size {old_size}, expected 0 <= old_size <= {len(leaves)}")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, True)


def _eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(
    leaf: bytes, index: int, size: int, root: bytes, path: Sequence[bytes]
) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``.

    Args:
        leaf: the leaf hash (:func:`hash_leaf` of the entry bytes).
        index: its position.
        size: the tree size of the checkpoint.
        root: the checkpoint's root hash.
        path: the inclusion path, leaf to root.

    Returns:
        ``True`` only if the path is well formed and leads to ``root``.
    """
    if not 0 < size <= MAX_TREE_SIZE or any(len(p) != HASH_SIZE for p in path):
        return False
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    got = root_from_path(H, leaf, index, size, path)
    return got is not None and _eq(got, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``(old_size, old_root)`` is a prefix of the newer one.

    RFC 9162 §2.1.4.2, with the edge cases of transparency-dev/merkle: equal sizes need an
    empty proof and equal roots; an empty old tree is consistent with anything (empty proof).

    Returns:
        ``True`` only if the proof verifies; never raises for hostile input.
    """
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE or len(proof) > MAX_PROOF:
        return False
    if any(len(x) != HASH_SIZE for x in (old_root, new_root, *proof)):
        return False
    if old_size == new_size:
        return not proof and _eq(old_root, new_root)
    if old_size == 0:
        return not proof
    if not proof:
        return False  # step 1
    return _verify_path(old_size, new_size, old_root, new_root, list(proof))


def _verify_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: list[bytes]
) -> bool:
    # RFC 9162 §2.1.4.2 steps 2-7, for 0 < old_size < new_size and a non-empty proof.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # step 2: the old tree is a perfect subtree
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(H, c, fr)
            sr = node_hash(H, c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(H, sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and _eq(fr, old_root) & _eq(sr, new_root)  # step 7
