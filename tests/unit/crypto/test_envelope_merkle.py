"""RFC 9162 Merkle hashing against the published RFC 6962 test data.

The leaf inputs, node hashes and root hashes are the test data of Certificate Transparency
as kept in transparency-dev/merkle ``testonly/constants.go`` (SHA-256). Inclusion paths for
the 8-leaf tree are assembled from those published node hashes, not from our own code.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.crypto.merkle import (
    MAX_PATH,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_and_paths,
    root_from_path,
    tree_root,
)

H = hashlib.sha256
LEAVES = [bytes.fromhex(x) for x in
          ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
NODES = [
    [bytes.fromhex(x) for x in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"]],
    [bytes.fromhex(x) for x in [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"]],
    [bytes.fromhex(x) for x in [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]],
    [bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]  # fmt: skip
ROOTS = [bytes.fromhex(x) for x in [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]]  # fmt: skip


def test_leaf_and_node_hashes_match_rfc6962_test_data() -> None:
    assert [leaf_hash(H, d) for d in LEAVES] == NODES[0]
    for level in range(1, 4):
        for i, expected in enumerate(NODES[level]):
            assert node_hash(H, NODES[level - 1][2 * i], NODES[level - 1][2 * i + 1]) == expected


@pytest.mark.parametrize("size", range(9))
def test_tree_root_matches_rfc6962_test_data(size: int) -> None:
    assert tree_root(H, [leaf_hash(H, d) for d in LEAVES[:size]]) == ROOTS[size]


def _published_path(index: int) -> list[bytes]:
    """PATH(index, D[8]) read off the published node hashes: the sibling at each level."""
    return [NODES[level][(index >> level) ^ 1] for level in range(3)]


@pytest.mark.parametrize("index", range(8))
def test_inclusion_path_of_full_tree_matches_published_nodes(index: int) -> None:
    leaves = NODES[0]
    assert inclusion_path(H, leaves, index) == _published_path(index)
    assert root_from_path(H, leaves[index], index, 8, _published_path(index)) == ROOTS[8]


@pytest.mark.parametrize("size", range(1, 9))
def test_every_inclusion_path_leads_to_the_published_root(size: int) -> None:
    leaves = NODES[0][:size]
    for index in range(size):
        path = inclusion_path(H, leaves, index)
        assert root_from_path(H, leaves[index], index, size, path) == ROOTS[size]


def test_wrong_proofs_do_not_reach_the_root() -> None:
    leaves = NODES[0][:7]
    path = inclusion_path(H, leaves, 3)
    assert root_from_path(H, leaves[3], 3, 7, path) == ROOTS[7]
    assert root_from_path(H, leaves[3], 2, 7, path) != ROOTS[7]  # wrong index
    assert root_from_path(H, leaves[4], 3, 7, path) != ROOTS[7]  # wrong leaf
    assert root_from_path(H, leaves[3], 3, 7, path[:-1]) is None  # too short
    assert root_from_path(H, leaves[3], 3, 7, [*path, path[0]]) is None  # too long
    assert root_from_path(H, leaves[3], 7, 7, path) is None  # index outside the tree
    assert root_from_path(H, leaves[0], 0, 1, []) == leaves[0]  # a batch of one
    assert root_from_path(H, leaves[0], 0, 2**40, [leaves[0]] * (MAX_PATH + 1)) is None


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100])
def test_all_paths_at_once_equal_one_by_one(size: int) -> None:
    leaves = [leaf_hash(H, i.to_bytes(4, "big")) for i in range(size)]
    root, paths = root_and_paths(H, leaves)
    assert root == tree_root(H, leaves)
    assert paths == [inclusion_path(H, leaves, i) for i in range(size)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_random_trees_prove_every_leaf(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(H, i.to_bytes(4, "big")) for i in range(size)]
    root = tree_root(H, leaves)
    index = data.draw(st.integers(0, size - 1))
    path = inclusion_path(H, leaves, index)
    assert len(path) <= MAX_PATH
    assert root_from_path(H, leaves[index], index, size, path) == root
    if path:
        k = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:k], bytes(32), *path[k + 1 :]]
        assert root_from_path(H, leaves[index], index, size, bad) != root
