"""Evaluation and calibration tensors, made once per model and shared by every backend.

Images are the real photographs that scikit-image ships (no download), preprocessed the way the
model expects: resize the shorter side, center-crop, scale to 0..1, normalise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputFileError
from .specs import ModelSpec

# Colour or greyscale photos and scans that skimage.data returns without a download.
SAMPLE_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "camera",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
    "logo",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "horse",
)


def load_sample_image(name: str) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from scikit-image's bundled data."""
    from skimage import data

    return _as_rgb8(np.asarray(getattr(data, name)()))


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return image


def _resize_short_side(image: np.ndarray, short: int) -> np.ndarray:
    from skimage.transform import resize

    height, width = image.shape[:2]
    scale = short / min(height, width)
    shape = (max(short, round(height * scale)), max(short, round(width * scale)))
    return resize(image, shape, order=1, anti_aliasing=True, preserve_range=True)


def _center_crop(image: np.ndarray, size: int) -> np.ndarray:
    top = (image.shape[0] - size) // 2
    left = (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def _normalise(crop: np.ndarray, spec: ModelSpec) -> np.ndarray:
    scaled = crop.astype(np.float32) / 255.0
    normalised = (scaled - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return normalised.transpose(2, 0, 1)  # HWC -> CHW


def preprocess(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return _normalise(_center_crop(_resize_short_side(image, spec.resize), spec.input_size), spec)


def random_crop(image: np.ndarray, spec: ModelSpec, rng: np.random.Generator) -> np.ndarray:
    """A random crop covering 35-100% of the image, maybe flipped: calibration data."""
    from skimage.transform import resize

    height, width = image.shape[:2]
    side = int(min(height, width) * np.sqrt(rng.uniform(0.35, 1.0)))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = image[top : top + side, left : left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    size = (spec.input_size, spec.input_size)
    crop = resize(crop, size, order=1, anti_aliasing=True, preserve_range=True)
    return _normalise(crop, spec)


def _all_images() -> dict[str, np.ndarray]:
    return {name: load_sample_image(name) for name in SAMPLE_IMAGES}


def stretch(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The whole image resized to input_size × input_size, as a detector's own transform does
    (nothing cropped away: objects at the border count too)."""
    from skimage.transform import resize

    size = (spec.input_size, spec.input_size)
    return _normalise(resize(image, size, order=1, anti_aliasing=True, preserve_range=True), spec)


def evaluation_images(spec: ModelSpec, whole: bool = False) -> tuple[np.ndarray, list[str]]:
    """Each sample image, center-cropped (or with ``whole``, stretched to the square) as
    N×3×H×W float32, and the images' names."""
    images = _all_images()
    prepare = stretch if whole else preprocess
    evaluation = np.stack([prepare(image, spec) for image in images.values()])
    return evaluation.astype(np.float32), list(images)


#: What a folder of the user's images may hold (case-insensitive suffixes).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """The images under ``folder`` (recursively, sorted); one line naming the folder when
    there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(f"image folder {root} not found: fix the path in your config")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise InputFileError(
            f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}): add some"
        )
    return found


def load_image_file(path: Path) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a file."""
    from skimage import io

    try:
        image = np.asarray(io.imread(path))
    except Exception as exc:
        raise InputFileError(f"image {path} cannot be read ({type(exc).__name__})") from exc
    return _as_rgb8(image)


#: The evaluation file's key for the images' class indices, where they are labelled.
LABELS = "labels"


def labelled_images(folder: str | Path, labels: str | Path | None) -> tuple[list[Path], np.ndarray]:
    """The images of an ImageFolder layout (one folder per class, named as in ``labels``: one
    class name per line, in the model's output order; without it, folders named by the class
    index) and their class indices. One line naming the folder where they do not fit."""
    root = Path(folder)
    files = image_files(root)
    classes = sorted({path.relative_to(root).parts[0] for path in files if path.parent != root})
    loose = [path.name for path in files if path.parent == root]
    if loose or not classes:
        raise InputFileError(
            f"image folder {root} holds images outside class folders ({', '.join(loose[:3])}): "
            "put each image in a folder named by its class"
        )
    if labels is not None:
        names = [line.strip() for line in Path(labels).read_text().splitlines() if line.strip()]
        index = {name: i for i, name in enumerate(names)}
        hint = f"not in {labels} (one class name per line, in the model's output order)"
    else:
        index = {name: int(name) for name in classes if name.isdigit()}
        hint = "not class indices: name the folders by index, or give labels: a file of names"
    unknown = [name for name in classes if name not in index]
    if unknown:
        raise InputFileError(
            f"image folder {root}: class folder(s) {', '.join(unknown[:5])} {hint}"
        )
    targets = np.array([index[path.relative_to(root).parts[0]] for path in files], np.int64)
    return files, targets


def data_files(spec: ModelSpec) -> tuple[dict[str, str], dict[str, str]]:
    """The user's files a model's evaluation and its calibration draw from, as named inputs
    of those two jobs (new files rerun them); each folder checked, one line where it does
    not fit."""
    evaluation, calibration = {}, {}
    if spec.evaluation_images is not None:
        labelled_images(spec.evaluation_images, spec.labels)
        evaluation["images"] = spec.evaluation_images
        if spec.labels is not None:
            evaluation["labels"] = spec.labels
    if spec.calibration_images is not None:
        image_files(spec.calibration_images)
        calibration["images"] = spec.calibration_images
    return evaluation, calibration


def labelled_evaluation(spec: ModelSpec) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The user's labelled images, preprocessed as for inference, their names and labels."""
    files, targets = labelled_images(spec.evaluation_images, spec.labels)
    images = np.stack([preprocess(load_image_file(path), spec) for path in files])
    names = [str(path.relative_to(spec.evaluation_images)) for path in files]
    return images.astype(np.float32), names, targets


def calibration_images(spec: ModelSpec, size: int, seed: int) -> np.ndarray:
    """int8 calibration data: ``size`` of the user's images (``calibration_images``), drawn
    seeded and preprocessed as for inference; else seeded random crops and flips of the
    sample images. A folder with fewer images than ``size`` is gone through again as random
    crops, so the calibration set still has ``size`` samples."""
    rng = np.random.default_rng(seed)
    if spec.calibration_images is None:
        sources = list(_all_images().values())
        samples = [random_crop(sources[i % len(sources)], spec, rng) for i in range(size)]
        return np.stack(samples).astype(np.float32)
    files = image_files(spec.calibration_images)
    chosen = [files[i] for i in rng.permutation(len(files))[:size]]
    images = [load_image_file(path) for path in chosen]
    samples = [preprocess(image, spec) for image in images]
    samples += [random_crop(images[i % len(images)], spec, rng) for i in range(size - len(samples))]
    return np.stack(samples).astype(np.float32)
