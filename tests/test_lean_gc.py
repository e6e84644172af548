"""``lean_gc`` keeps the collector out of a running flow's way and restores it afterwards."""

from __future__ import annotations

import gc

import pytest

from riverrun.streams.flow.runtime import lean_gc


def test_lean_gc_freezes_and_restores_even_on_error():
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with pytest.raises(RuntimeError), lean_gc(young_threshold=12_345):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > frozen  # what existed is out of the collections
        raise RuntimeError("the flow failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
