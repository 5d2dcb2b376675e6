import numpy as np
import pytest

pytest.importorskip("skimage")

from deploybench.inputs import (  # noqa: E402
    SAMPLE_IMAGES,
    load_sample_image,
    prepare_calibration,
    prepare_evaluation,
)
from deploybench.io import load_npz  # noqa: E402
from helpers import model_spec  # noqa: E402

SPEC = model_spec("m", source="torchvision", architecture="resnet18", input_size=64)


def test_every_sample_image_loads_offline_as_rgb_uint8():
    for name in SAMPLE_IMAGES:
        image = load_sample_image(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name


def test_evaluation_inputs_are_normalised_crops(tmp_path):
    shape = prepare_evaluation(SPEC, tmp_path / "e.npz")
    data = load_npz(tmp_path / "e.npz")
    assert shape == (len(SAMPLE_IMAGES), 3, 64, 64)
    assert data["evaluation"].dtype == np.float32
    assert list(data["image_names"]) == list(SAMPLE_IMAGES)
    # ImageNet normalisation: roughly zero mean, unit spread, and distinct images
    assert abs(float(data["evaluation"].mean())) < 1.0
    assert 0.3 < float(data["evaluation"].std()) < 2.0
    assert not np.allclose(data["evaluation"][0], data["evaluation"][1])


def test_calibration_is_seeded_and_distinct_from_evaluation(tmp_path):
    prepare_calibration(SPEC, 5, seed=3, out_path=tmp_path / "a.npz")
    prepare_calibration(SPEC, 5, seed=3, out_path=tmp_path / "b.npz")
    prepare_calibration(SPEC, 5, seed=4, out_path=tmp_path / "c.npz")
    a, b, c = (load_npz(tmp_path / f"{n}.npz")["calibration"] for n in "abc")
    assert a.shape == (5, 3, 64, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    prepare_evaluation(SPEC, tmp_path / "e.npz")
    evaluation = load_npz(tmp_path / "e.npz")["evaluation"]
    assert not any(np.allclose(a[0], e) for e in evaluation)
