from tether.studio.parameters import ParameterStore


def test_every_update_bumps_version_and_merges() -> None:
    store = ParameterStore()
    assert store.update({"pipeline": "tint", "prompt": "red"}).version == 1
    assert store.update({"prompt": "blue", "strength": 0.2}).version == 2
    assert store.parameters == {"pipeline": "tint", "prompt": "blue", "strength": 0.2}
    assert store.update({"strength": None}).version == 3
    assert "strength" not in store.parameters
    assert not store.in_sync


def test_ack_is_exact_never_goes_back_or_past_version() -> None:
    store = ParameterStore()
    store.update({"a": 1})
    store.update({"a": 2})
    assert store.ack(2)
    assert not store.ack(1)
    assert store.acked_version == 2 and store.in_sync
    assert not store.ack(99)  # a version we never made is not an ack of ours
    assert store.acked_version == 2
    store.update({"a": 3})
    assert not store.in_sync  # acked means exactly the latest version


def test_a_version_is_frozen_whatever_happens_to_the_store() -> None:
    store = ParameterStore()
    store.update({"nested": {"x": 1}})
    offered = store.current()
    offered.parameters["nested"]["x"] = 99  # a copy: cannot change the offer
    store.update({"nested": {"x": 2}, "late": True})
    assert offered.version == 1 and offered.parameters == {"nested": {"x": 1}}
    snap = store.snapshot()
    snap["parameters"]["nested"]["x"] = 3
    assert store.parameters["nested"]["x"] == 2


def test_clear_empties_but_versions_never_repeat() -> None:
    store = ParameterStore()
    store.update({"pipeline": "gray"})
    store.update({"pipeline": "invert"})
    store.ack(2)
    cleared = store.clear()
    assert cleared.version == 3 and cleared.parameters == {}
    assert store.snapshot() == {"parameters": {}, "version": 3, "acked_version": 2}
    assert store.update({"pipeline": "gray"}).version == 4
