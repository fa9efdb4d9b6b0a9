"""The pack plan: lost packs stay together, the rest fill packs by key, within the room left."""

from __future__ import annotations

from orchestrator.loop.packs import plan_packs

# (name, existing pack, key)
QUEUE = [("a", None, "m1"), ("b", "p-old", "m1"), ("c", None, "m2"), ("d", None, "m1"),
         ("e", "p-old", "m1"), ("f", None, "m1"), ("g", None, "m2")]


def _plan(size: int, room: int | None = None) -> list[list[str]]:
    groups = plan_packs(QUEUE, size, pack_of=lambda q: q[1], key=lambda q: q[2], room=room)
    return [[q[0] for q in g] for g in groups]


def test_a_lost_pack_goes_again_whole_and_the_rest_pack_by_key_in_queue_order() -> None:
    assert _plan(2) == [["a", "d"], ["b", "e"], ["c", "g"], ["f"]]
    assert _plan(8) == [["a", "d", "f"], ["b", "e"], ["c", "g"]]


def test_size_one_launches_every_fresh_child_alone() -> None:
    assert _plan(1) == [["a"], ["b", "e"], ["c"], ["d"], ["f"], ["g"]]


def test_new_packs_hold_no_more_than_the_room_left_after_lost_packs() -> None:
    assert _plan(2, room=5) == [["a", "d"], ["b", "e"], ["f"]]  # 2 of 5 go to the lost pack
    assert _plan(2, room=2) == [["b", "e"]]
