import numpy as np
import pytest
from pydantic import ValidationError

from tether.pipelines import UnknownPipeline, load_pipelines, resolve
from tether.pipelines.builtin import NoParams, hue_for_prompt

FRAME = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def run(parameters: dict) -> np.ndarray:
    pipeline, params = resolve(load_pipelines(), parameters)
    out = pipeline.process(FRAME.copy(), params)
    assert out.shape == FRAME.shape and out.dtype == np.uint8
    return out


def test_builtins_are_registered() -> None:
    assert {"passthrough", "gray", "invert", "edges", "tint"} <= set(load_pipelines())


def test_passthrough_is_identity_and_default() -> None:
    assert np.array_equal(run({}), FRAME)


def test_gray_has_equal_channels() -> None:
    out = run({"pipeline": "gray"})
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 1], out[:, :, 2])


def test_invert() -> None:
    assert np.array_equal(run({"pipeline": "invert"}), 255 - FRAME)


def test_edges_finds_an_edge() -> None:
    pipeline, params = resolve(load_pipelines(), {"pipeline": "edges"})
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:, 16:] = 200
    out = pipeline.process(frame, params)
    assert out[:, 15:17].mean() > 100 and out[:, :10].mean() == 0


def test_tint_follows_prompt_and_strength() -> None:
    red = run({"pipeline": "tint", "prompt": "red roses", "strength": 1.0})
    assert red[:, :, 0].mean() > red[:, :, 2].mean() + 30
    none = run({"pipeline": "tint", "prompt": "red", "strength": 0.0})
    assert np.abs(none.astype(int) - FRAME).max() <= 1
    assert hue_for_prompt("a BLUE sky") == hue_for_prompt("blue")
    assert hue_for_prompt("zebra") == hue_for_prompt("zebra")  # stable


def test_bad_parameters_are_rejected_with_names() -> None:
    with pytest.raises(UnknownPipeline, match="unknown pipeline 'nope'; available:"):
        resolve(load_pipelines(), {"pipeline": "nope"})
    with pytest.raises(ValidationError, match="strength"):
        resolve(load_pipelines(), {"pipeline": "tint", "strength": 7})


def test_keys_of_other_pipelines_are_ignored() -> None:
    _, params = resolve(load_pipelines(), {"pipeline": "gray", "prompt": "left over"})
    assert params.model_dump() == {}


class Sepia:
    """A third-party pipeline, as a plugin package would ship it."""

    name = "sepia"
    params_model = NoParams

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        return frame


def test_third_party_pipelines_load_from_entry_points(monkeypatch, caplog) -> None:
    from importlib.metadata import EntryPoint

    import tether.pipelines as registry

    group = registry.ENTRY_POINT_GROUP
    plugins = [
        EntryPoint("sepia", "tests.unit.test_pipelines:Sepia", group),
        EntryPoint("broken", "tests.unit.test_pipelines:NoSuchThing", group),
        EntryPoint("not-a-pipeline", "tests.unit.test_pipelines:FRAME", group),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: plugins)
    pipelines = registry.load_pipelines()
    assert "sepia" in pipelines and "gray" in pipelines
    assert "skipping pipeline plugin 'broken'" in caplog.text
    assert "skipping pipeline plugin 'not-a-pipeline'" in caplog.text
