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


# ---------------------------------------------------------------- labelled images, accuracy


def test_an_image_folder_by_class_index_or_by_name_gives_each_image_its_label(tmp_path):
    from deploybench.inputs import labelled_images
    from helpers import labelled_photos

    folder, labels = labelled_photos(tmp_path / "by_index")
    files, targets = labelled_images(folder, None)
    assert {p.stem: int(t) for p, t in zip(files, targets, strict=True)} == labels
    # by name: a labels file, one class name per line in output order
    names = {str(i): f"class{i}" for i in labels.values()}
    named, _ = labelled_photos(tmp_path / "by_name", names)
    label_file = tmp_path / "labels.txt"
    label_file.write_text("\n".join(f"class{i}" for i in range(1000)) + "\n")
    files, targets = labelled_images(named, label_file)
    assert {p.stem: int(t) for p, t in zip(files, targets, strict=True)} == labels


def test_a_folder_the_labels_do_not_name_or_loose_images_are_one_line_naming_the_folder(tmp_path):
    from deploybench.inputs import labelled_images
    from helpers import labelled_photos

    folder, _ = labelled_photos(
        tmp_path / "photos", {"281": "cat", "967": "espresso", "409": "clock", "657": "missile"}
    )
    label_file = tmp_path / "labels.txt"
    label_file.write_text("cat\nespresso\nclock\n")
    with pytest.raises(InputFileError, match=r"photos: class folder\(s\) missile not in") as info:
        labelled_images(folder, label_file)
    assert "\n" not in str(info.value)
    with pytest.raises(InputFileError, match="not class indices"):
        labelled_images(folder, None)
    (folder / "cat" / "chelsea.png").rename(folder / "chelsea.png")
    with pytest.raises(InputFileError, match="outside class folders"):
        labelled_images(folder, label_file)


def test_accuracy_counts_top1_and_top5_and_pairs_the_change_with_the_reference():
    from deploybench.parity import labelled_accuracy

    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    reference = np.eye(10)[labels] * 5.0  # right on every image
    candidate = reference.copy()
    candidate[0] = np.eye(10)[9] * 5 + np.eye(10)[0] * 4  # second choice: top-5 only
    candidate[1] = np.eye(10)[9] * 5  # the label nowhere near the top
    accuracy = labelled_accuracy(reference, candidate, labels)
    assert (accuracy["top1"], accuracy["reference_top1"]) == (6 / 8, 1.0)
    assert accuracy["top5"] == 8 / 8 and accuracy["reference_top5"] == 1.0
    assert accuracy["change"] == -2 / 8 and accuracy["discordant"] == 2
    assert accuracy["change_low"] < -2 / 8 < accuracy["change_high"]
    assert accuracy["top1_low"] < 0.75 < accuracy["top1_high"]
    assert accuracy["images_needed"] > 8


def test_evaluation_images_are_for_classification_and_labels_need_them(tmp_path):
    text = {
        "source": "text_encoder",
        "architecture": "tiny",
        "task": "text-encoder",
        "axes": {"sequence": 16},
    }
    with pytest.raises(ConfigError, match="evaluation_images .* is for task classification"):
        parse_config(validated({"models": {"t": {**text, "evaluation_images": str(tmp_path)}}}))
    image = {"source": "torchvision", "architecture": "resnet18", "labels": "labels.txt"}
    with pytest.raises(ConfigError, match="labels names the classes of evaluation_images"):
        parse_config(validated({"models": {"m": image}}))


def test_the_data_jobs_get_your_folders_as_inputs_checked_when_the_dag_is_built(tmp_path):
    from deploybench.inputs import data_files
    from helpers import labelled_photos

    folder, _ = labelled_photos(tmp_path / "photos")
    spec = model_spec(
        "m",
        source="torchvision",
        architecture="resnet18",
        evaluation_images=str(folder),
        calibration_images=str(folder),
    )
    assert data_files(spec) == ({"images": str(folder)}, {"images": str(folder)})
    assert data_files(model_spec("m", source="torchvision", architecture="resnet18")) == ({}, {})
    (tmp_path / "empty").mkdir()
    empty = model_spec(
        "m",
        source="torchvision",
        architecture="resnet18",
        calibration_images=str(tmp_path / "empty"),
    )
    with pytest.raises(InputFileError, match="holds no images"):
        data_files(empty)
