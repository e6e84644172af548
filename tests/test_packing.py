"""Packed feature vectors of pending events come back equal: same keys in the same order, same
values, same types; what cannot be packed exactly is kept as it is."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from riverrun.streams.core.join import LabelJoin
from riverrun.streams.core.packing import FeaturePacker

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**60), 2**60),
    st.booleans(),
    st.text(max_size=3),
)
vectors = st.dictionaries(st.text(max_size=4), values, max_size=12)


def same(a: dict, b: dict) -> bool:
    return list(a.items()) == list(b.items()) and all(type(a[k]) is type(b[k]) for k in a)


@given(x=vectors)
@settings(max_examples=300, deadline=None)
def test_unpack_gives_back_the_same_dict(x):
    packer = FeaturePacker()
    assert same(FeaturePacker.unpack(packer.pack(x)), x)
    assert same(FeaturePacker.unpack(pickle.loads(pickle.dumps(packer.pack(x)))), x)


def test_numbers_are_packed_and_the_rest_kept():
    packer = FeaturePacker()
    assert isinstance(packer.pack({"a": 1.5, "n": 3}), tuple)
    for x in ({"a": 1.5, "flag": True}, {"a": 1.5, "c": "DE"}, {"big": 2**53}):
        assert packer.pack(x) is x
    # -0.0 and ints up to 2**53 survive exactly
    x = {"z": -0.0, "n": 2**53 - 1, "m": -(2**53) + 1}
    assert same(packer.unpack(packer.pack(x)), x) and str(packer.unpack(packer.pack(x))["z"]) == "-0.0"


def test_one_schema_is_shared_and_their_number_is_bounded():
    packer = FeaturePacker(max_schemas=2)
    a, b = packer.pack({"x": 1.0}), packer.pack({"x": 2.0})
    assert a[0] is b[0]  # the names are kept once
    packer.pack({"y": 1.0})
    x = {"z": 1.0}
    assert packer.pack(x) is x  # a third schema: kept as it is


def test_the_join_returns_what_was_served_and_reads_older_unpacked_entries():
    join = LabelJoin(ttl_seconds=100)
    x = {"a": 0.1, "count": 7, "c": "DE"}
    join.add_event("e1", 0.0, dict(x))
    join.add_event("e2", 0.0, {"a": 0.1, "count": 7})
    assert same(join.match_label("e1", 1.0), x)
    assert same(join.match_label("e2", 1.0), {"a": 0.1, "count": 7})
    old = LabelJoin(ttl_seconds=100)  # as pickled before packing: a dict in the table, no packer
    old._pending["e3"] = (100.0, {"a": 1.0})
    del old._packer
    restored = pickle.loads(pickle.dumps(old))
    assert restored.match_label("e3", 1.0) == {"a": 1.0}
    restored.add_event("e4", 2.0, {"a": 2.0})
    assert restored.match_label("e4", 3.0) == {"a": 2.0}
