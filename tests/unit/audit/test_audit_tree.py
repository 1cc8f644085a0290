"""The log's Merkle tree against published RFC 6962 test data, and proofs under mutation.

Leaves, node hashes and roots are the Certificate Transparency test data already pinned by
tests/unit/crypto/test_envelope_merkle.py (transparency-dev/merkle ``testonly/constants.go``).
The consistency proofs below are transparency-dev/merkle ``proof/verify_test.go``
``consistencyProofs`` (sizes 1->8, 6->8, 2->5, 6->7 of the same 8-leaf tree).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.audit.tree import (
    CompactRange,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.unit.crypto.test_envelope_merkle import LEAVES, NODES, ROOTS

PUBLISHED_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
LEAF_HASHES = [hash_leaf(d) for d in LEAVES]


def test_leaf_hashes_match_rfc6962_test_data() -> None:
    assert NODES[0] == LEAF_HASHES


@pytest.mark.parametrize("size", range(9))
def test_compact_range_root_matches_rfc6962_roots(size: int) -> None:
    tree = CompactRange()
    for leaf in LEAF_HASHES[:size]:
        tree.append(leaf)
    assert tree.size == size
    assert tree.root() == ROOTS[size] == root_of(LEAF_HASHES[:size])


@pytest.mark.parametrize(("old", "new", "proof"), PUBLISHED_CONSISTENCY)
def test_consistency_proofs_match_published_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(p) for p in proof]
    assert consistency_proof(LEAF_HASHES[:new], old) == expected
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


@pytest.mark.parametrize(("old", "new", "proof"), PUBLISHED_CONSISTENCY)
def test_published_consistency_proofs_fail_when_corrupted(
    old: int, new: int, proof: list[str]
) -> None:
    # The probes of transparency-dev/merkle corruptConsistencyProof.
    p = [bytes.fromhex(x) for x in proof]
    r1, r2 = ROOTS[old], ROOTS[new]
    bad = [
        (old - 1, new, r1, r2, p), (old + 1, new, r1, r2, p), (old ^ 2, new, r1, r2, p),
        (old, new * 2, r1, r2, p), (old, new // 2, r1, r2, p),
        (old, new, ROOTS[0], r2, p), (old, new, r1, ROOTS[0], p), (old, new, r2, r1, p),
        (old, new, r1, r2, []), (old, new, r1, r2, [*p, r1]), (old, new, r1, r2, [*p, r2]),
        (old, new, r1, r2, [r1, *p]), (old, new, r1, r2, [r2, *p]),
        (old, new, r1, r2, [p[0], *p]), (old, new, r1, r2, p[:-1]),
        (old, new, r1, r2, [*p, b""]), (old, new, r1, r2, [b"", *p]),
    ]  # fmt: skip
    for i in range(len(p)):
        flipped = list(p)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((old, new, r1, r2, flipped))
    for args in bad:
        assert not verify_consistency(*args), args


def test_consistency_edge_cases_of_transparency_dev() -> None:
    empty = hashlib.sha256(b"").digest()
    r1, r2 = ROOTS[1], ROOTS[2]
    assert verify_consistency(0, 0, empty, empty, [])
    assert verify_consistency(0, 5, empty, ROOTS[5], [])
    assert verify_consistency(1, 1, r1, r1, [])
    assert not verify_consistency(1, 1, r1, r2, [])  # same size, different roots: a fork
    assert not verify_consistency(1, 0, r1, r2, [])  # time travel to the past
    assert not verify_consistency(2, 1, r2, r1, [])
    assert not verify_consistency(1, 2, r1, r2, [])  # empty proof
    assert not verify_consistency(1, 1, r1, r1, [empty])  # equal trees need no proof
    assert not verify_consistency(0, 1, empty, r1, [empty])


@pytest.mark.parametrize("size", range(1, 9))
def test_inclusion_proofs_reach_the_published_roots(size: int) -> None:
    for index in range(size):
        path = inclusion_proof(LEAF_HASHES[:size], index)
        assert verify_inclusion(LEAF_HASHES[index], index, size, ROOTS[size], path)
        assert not verify_inclusion(LEAF_HASHES[index], index, size, ROOTS[0], path)


def _mutations(proof: list[bytes], pick: int) -> list[list[bytes]]:
    i = pick % len(proof)
    flipped = bytes([proof[i][0] ^ 1]) + proof[i][1:]
    return [
        [*proof[:i], flipped, *proof[i + 1 :]],
        proof[:-1],
        [*proof, proof[-1]],
        [proof[0], *proof],
        list(reversed(proof)) if len(set(proof)) > 1 else [*proof, bytes(32)],
    ]


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, 400), data=st.data())
def test_random_trees_consistency_proofs_verify_and_mutations_fail(
    size: int, data: st.DataObject
) -> None:
    leaves = [hash_leaf(i.to_bytes(4, "big")) for i in range(size)]
    old = data.draw(st.integers(1, size - 1))
    proof = consistency_proof(leaves, old)
    old_root, new_root = root_of(leaves[:old]), root_of(leaves)
    assert verify_consistency(old, size, old_root, new_root, proof)
    for bad in _mutations(proof, data.draw(st.integers(0, 1000))):
        assert not verify_consistency(old, size, old_root, new_root, bad)
    assert not verify_consistency(old, size, new_root, old_root, proof)
    forked = [*leaves[: old - 1], hash_leaf(b"forged"), *leaves[old:]]
    assert not verify_consistency(old, size, old_root, root_of(forked), proof)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, 400), data=st.data())
def test_random_trees_inclusion_proofs_verify_and_mutations_fail(
    size: int, data: st.DataObject
) -> None:
    leaves = [hash_leaf(i.to_bytes(4, "big")) for i in range(size)]
    index = data.draw(st.integers(0, size - 1))
    root = root_of(leaves)
    path = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, root, path)
    for bad in _mutations(path, data.draw(st.integers(0, 1000))):
        assert not verify_inclusion(leaves[index], index, size, root, bad)
    other = (index + 1) % size
    assert not verify_inclusion(leaves[other], index, size, root, path)
    assert not verify_inclusion(leaves[index], size, size, root, path)  # index outside the tree
