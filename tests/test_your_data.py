"""Your data: int8 calibration from a folder of your own images."""

from __future__ import annotations

import numpy as np
import pytest
from deploybench.errors import ConfigError, InputFileError
from deploybench.inputs import calibration_images, load_sample_image, preprocess
from deploybench.settings import parse_config
from helpers import model_spec, validated

PHOTOS = ("chelsea", "coffee", "rocket")


def photo_folder(folder):
    from skimage import io

    (folder / "cats").mkdir(parents=True)
    for name in PHOTOS:
        io.imsave(
            folder / ("cats" if name == "chelsea" else ".") / f"{name}.png", load_sample_image(name)
        )
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_calibration_draws_the_users_images_preprocessed_as_for_inference(tmp_path):
    spec = model_spec(
        "m",
        source="torchvision",
        architecture="resnet18",
        input_size=64,
        calibration_images=str(photo_folder(tmp_path / "mine")),
    )
    drawn = calibration_images(spec, 3, seed=4)
    assert drawn.shape == (3, 3, 64, 64) and drawn.dtype == np.float32
    expected = {name: preprocess(load_sample_image(name), spec) for name in PHOTOS}
    # each of the three photographs once, in a seeded order, as inference would see it
    matched = [
        next(name for name, image in expected.items() if np.allclose(sample, image, atol=1e-5))
        for sample in drawn
    ]
    assert sorted(matched) == sorted(PHOTOS)
    np.testing.assert_array_equal(drawn, calibration_images(spec, 3, seed=4))
    # more samples than images: the rest are random crops of them, still seeded
    more = calibration_images(spec, 5, seed=4)
    assert more.shape[0] == 5 and not any(
        np.allclose(more[4], e, atol=1e-3) for e in expected.values()
    )
    sample_photos = calibration_images(
        model_spec("m", source="torchvision", architecture="resnet18", input_size=64), 3, seed=4
    )
    assert not np.allclose(sample_photos, drawn)


def test_an_empty_or_missing_folder_is_one_line_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    for folder, message in (("empty", "holds no images"), ("absent", "not found")):
        spec = model_spec(
            "m",
            source="torchvision",
            architecture="resnet18",
            calibration_images=str(tmp_path / folder),
        )
        with pytest.raises(InputFileError, match=message) as info:
            calibration_images(spec, 4, seed=0)
        assert str(tmp_path / folder) in str(info.value) and "\n" not in str(info.value)


def test_a_task_that_makes_its_own_data_refuses_an_image_folder(tmp_path):
    config = {
        "models": {
            "encoder": {
                "source": "text_encoder",
                "architecture": "tiny",
                "task": "text-encoder",
                "axes": {"sequence": 16},
                "calibration_images": str(tmp_path),
            }
        }
    }
    with pytest.raises(ConfigError, match="calibration_images is for image tasks"):
        parse_config(validated(config))


def test_only_the_calibration_job_is_handed_the_folder_so_only_the_int8_chain_reruns():
    spec = model_spec(
        "m", source="torchvision", architecture="resnet18", calibration_images="photos"
    )
    assert "calibration_images" not in spec.as_dict()
    assert spec.as_dict(calibration=True)["calibration_images"] == "photos"
