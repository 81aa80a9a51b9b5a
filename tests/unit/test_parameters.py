from tether.studio.parameters import ParameterStore


def test_every_update_bumps_version_and_merges() -> None:
    store = ParameterStore()
    assert store.update({"pipeline": "tint", "prompt": "red"}) == 1
    assert store.update({"prompt": "blue", "strength": 0.2}) == 2
    assert store.parameters == {"pipeline": "tint", "prompt": "blue", "strength": 0.2}
    assert store.update({"strength": None}) == 3
    assert "strength" not in store.parameters
    assert not store.in_sync


def test_ack_never_goes_back_or_past_version() -> None:
    store = ParameterStore()
    store.update({"a": 1})
    store.update({"a": 2})
    store.ack(2)
    store.ack(1)
    assert store.acked_version == 2 and store.in_sync
    store.ack(99)
    assert store.acked_version == 2


def test_snapshot_is_a_copy_and_clear_resets() -> None:
    store = ParameterStore()
    store.update({"nested": {"x": 1}})
    snap = store.snapshot()
    snap["parameters"]["nested"]["x"] = 2
    assert store.parameters["nested"]["x"] == 1
    store.clear()
    assert store.snapshot() == {"parameters": {}, "version": 0, "acked_version": 0}
