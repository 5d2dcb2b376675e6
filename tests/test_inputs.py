import numpy as np
import pytest

pytest.importorskip("skimage")

from deploybench.feeds import load_feeds  # noqa: E402
from deploybench.inputs import SAMPLE_IMAGES, load_sample_image  # noqa: E402
from deploybench.io import load_npz  # noqa: E402
from deploybench.stages.prepare import (  # noqa: E402
    prepare_calibration_inputs,
    prepare_evaluation_inputs,
)
from helpers import model_spec  # noqa: E402

SPEC = model_spec("m", source="torchvision", architecture="resnet18", input_size=64)


def test_every_sample_image_loads_offline_as_rgb_uint8():
    for name in SAMPLE_IMAGES:
        image = load_sample_image(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name


def test_evaluation_inputs_are_normalised_crops(tmp_path):
    prepare_evaluation_inputs(SPEC.as_dict(), str(tmp_path / "e.npz"))
    evaluation = load_feeds(tmp_path / "e.npz")
    assert list(evaluation) == ["input"]  # the classification task's one named input
    images = evaluation["input"]
    assert images.shape == (len(SAMPLE_IMAGES), 3, 64, 64)
    assert images.dtype == np.float32
    assert list(load_npz(tmp_path / "e.npz")["image_names"]) == list(SAMPLE_IMAGES)
    # ImageNet normalisation: roughly zero mean, unit spread, and distinct images
    assert abs(float(images.mean())) < 1.0
    assert 0.3 < float(images.std()) < 2.0
    assert not np.allclose(images[0], images[1])


def test_calibration_is_seeded_and_distinct_from_evaluation(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        prepare_calibration_inputs(SPEC.as_dict(), 5, seed, str(tmp_path / f"{name}.npz"))
    a, b, c = (load_feeds(tmp_path / f"{n}.npz")["input"] for n in "abc")
    assert a.shape == (5, 3, 64, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    prepare_evaluation_inputs(SPEC.as_dict(), str(tmp_path / "e.npz"))
    evaluation = load_feeds(tmp_path / "e.npz")["input"]
    assert not any(np.allclose(a[0], e) for e in evaluation)
