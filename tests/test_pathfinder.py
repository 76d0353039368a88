"""Pathfinder: the label is decidable from the image alone (an image-only solver gets every image right),
every image has exactly two dots, and no trivial cue (ink, dot distance) tells the classes apart."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from tnn_ref.tasks.classify import LabelledData
from tnn_ref.tasks.pathfinder import (
    PathfinderConfig,
    _free_offsets,
    _free_offsets_packed,
    pathfinder_images,
    pathfinder_sequences,
)

DEFAULT = PathfinderConfig()
VARIANTS = [PathfinderConfig(paths=2, path_length=32, gap=0, separation=3, dash=2, dot_radius=1.0, max_turn=1.0),
            PathfinderConfig(size=24, paths=3, path_length=16, dash=2, gap=1, separation=3, max_turn=0.8)]


@pytest.fixture(scope="module")
def default_set():
    images, labels = pathfinder_images(DEFAULT, 400, seed=0)
    return images[:, 0].numpy() > 0.5, labels.numpy()


def find_dots(image: np.ndarray, config: PathfinderConfig) -> list[np.ndarray]:
    """The dots' centre pixels: what survives an erosion by the dot's own shape, one per 8-connected blob."""
    eroded = ndimage.binary_erosion(image, structure=config.dot_footprint)
    blobs, count = ndimage.label(eroded, structure=np.ones((3, 3)))
    return [np.argwhere(blobs == i + 1).mean(axis=0).round().astype(int) for i in range(count)]


def joined(image: np.ndarray, dots: list[np.ndarray], link: int) -> bool:
    """Image-only solver: grow every lit pixel to a link x link square (pixels up to `link` apart then touch),
    take 8-connected components, and ask whether the two dots share one."""
    grown = ndimage.binary_dilation(image, structure=np.ones((link, link), dtype=bool)) if link > 1 else image
    components, _ = ndimage.label(grown, structure=np.ones((3, 3)))
    return components[tuple(dots[0])] == components[tuple(dots[1])]


def solver_accuracy(images: np.ndarray, labels: np.ndarray, config: PathfinderConfig, link: int) -> float:
    return float(np.mean([joined(image, find_dots(image, config), link) == label for image, label in zip(images, labels)]))


def best_threshold_accuracy(feature: np.ndarray, labels: np.ndarray) -> float:
    """The best accuracy of `feature >= t` (or its opposite) over all thresholds t."""
    best = 0.5
    for t in np.unique(feature):
        accuracy = float(((feature >= t) == labels).mean())
        best = max(best, accuracy, 1 - accuracy)
    return best


def binned_accuracy(feature: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """The accuracy of predicting each of `bins` quantile bins of `feature` as its majority class (in sample):
    catches a cue that a single threshold misses, e.g. one class concentrated in the middle of the range."""
    edges = np.quantile(feature, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, feature, side="right")  # (N,) bin of each example
    return sum(max(labels[which == b].sum(), (1 - labels[which == b]).sum()) for b in np.unique(which)) / len(labels)


def test_shapes_range_and_balance(default_set):
    images, labels = pathfinder_images(DEFAULT, 11, seed=4)
    assert images.shape == (11, 1, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (11,) and labels.dtype == torch.long
    assert set(images.unique().tolist()) == {0.0, 1.0}
    assert int(labels.sum()) == 6  # count - count // 2 positives
    _, labels = default_set
    assert labels.sum() == 200 and set(labels.tolist()) == {0, 1}
    assert 0.3 < labels[:200].mean() < 0.7  # shuffled, not sorted by class


def test_deterministic_for_a_seed():
    config = VARIANTS[1]
    a, b, c = (pathfinder_images(config, 12, seed=s) for s in (3, 3, 4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_exactly_two_dots_per_image(default_set):
    images, _ = default_set
    dots = [find_dots(image, DEFAULT) for image in images]
    assert all(len(found) == 2 for found in dots)
    # a dot is a 3 x 3 square of ink around its centre
    assert all(images[i][r - 1 : r + 2, c - 1 : c + 2].all() for i, found in enumerate(dots) for r, c in found)


def test_an_image_only_solver_recovers_every_label(default_set):
    images, labels = default_set
    assert solver_accuracy(images, labels, DEFAULT, link=DEFAULT.gap + 1) == 1.0
    # the invariant is tight: linking less than the gap breaks a curve into dashes, linking across the
    # separation merges curves; either way the solver fails
    assert solver_accuracy(images[:100], labels[:100], DEFAULT, link=DEFAULT.gap) < 0.8
    assert solver_accuracy(images[:100], labels[:100], DEFAULT, link=2 * DEFAULT.separation) < 0.9


@pytest.mark.parametrize("config", VARIANTS)
def test_the_invariant_holds_for_other_configs(config):
    images, labels = pathfinder_images(config, 120, seed=1)
    images, labels = images[:, 0].numpy() > 0.5, labels.numpy()
    assert all(len(find_dots(image, config)) == 2 for image in images)
    assert solver_accuracy(images, labels, config, link=config.gap + 1) == 1.0


def test_images_wider_than_64_pixels_take_the_slow_placement():
    config = PathfinderConfig(size=72, paths=2, path_length=40)
    images, labels = pathfinder_images(config, 6, seed=2)
    images, labels = images[:, 0].numpy() > 0.5, labels.numpy()
    assert images.shape == (6, 72, 72) and solver_accuracy(images, labels, config, link=config.gap + 1) == 1.0


def test_no_trivial_cue_separates_the_classes(default_set):
    images, labels = default_set
    ink = images.sum(axis=(1, 2)).astype(float)
    centres = np.array([find_dots(image, DEFAULT) for image in images], dtype=float)  # (N, 2 dots, 2)
    distance = np.linalg.norm(centres[:, 0] - centres[:, 1], axis=1)
    middle = np.linalg.norm(centres.mean(axis=1) - (DEFAULT.size - 1) / 2, axis=1)  # the dots' midpoint vs the centre
    for feature in (ink, distance, middle):
        assert best_threshold_accuracy(feature, labels) < 0.7 and binned_accuracy(feature, labels) < 0.7
    # the two classifiers themselves: chance on a useless feature, perfect on the label, and the binned one
    # sees a class held in the middle of the range (as the dot distance of positives is, before matching)
    useless, middle_band = np.arange(len(labels)) % 2, np.where(labels == 1, 5.0, np.arange(len(labels)) % 11)
    assert best_threshold_accuracy(useless, labels) < 0.6 and binned_accuracy(useless, labels) < 0.6
    assert best_threshold_accuracy(labels.astype(float), labels) == binned_accuracy(labels.astype(float), labels) == 1
    assert best_threshold_accuracy(middle_band, labels) < 0.8 < 0.9 < binned_accuracy(middle_band, labels)


def test_packed_free_offsets_match_the_slow_version():
    rng = np.random.default_rng(0)
    for size in (8, 13, 32, 64):
        for _ in range(50):
            reach = rng.random((size, size)) < rng.random()
            extent = rng.integers(1, size + 1, size=2)
            ink = np.stack([rng.integers(0, extent[0], 9), rng.integers(0, extent[1], 9)], axis=1)
            assert np.array_equal(_free_offsets_packed(reach, ink, extent), _free_offsets(reach, ink, extent))
    reach = np.zeros((8, 8), dtype=bool)
    reach[2, 5] = True
    free = _free_offsets(reach, np.array([[0, 0], [1, 1]]), np.array([2, 2]))  # a diagonal pair of pixels
    assert free.shape == (7, 7) and sorted(map(tuple, np.argwhere(~free))) == [(1, 4), (2, 5)]


def test_sequences():
    images, labels = pathfinder_images(VARIANTS[1], 6, seed=0)
    tokens = pathfinder_sequences(images)
    assert tokens.shape == (6, 24 * 24) and tokens.dtype == torch.long
    assert set(tokens.unique().tolist()) == {0, 255}
    assert torch.equal(tokens.view(6, 24, 24), (images[:, 0] * 255).long())  # raster order, row by row
    assert len(LabelledData(tokens, labels)) == 6


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(size=4), "size"),
    (dict(size=True), "size"),
    (dict(paths=1), "paths"),
    (dict(path_length=7), "path_length"),
    (dict(path_length=32 * 32 + 1), "path_length"),
    (dict(dash=0), "dash"),
    (dict(gap=-1), "gap"),
    (dict(gap=3), "separation"),
    (dict(separation=2, gap=0), "separation"),
    (dict(max_turn=-0.1), "max_turn"),
    (dict(max_turn=4.0), "max_turn"),
    (dict(max_turn=float("nan")), "max_turn"),
    (dict(dot_radius=0.5), "dot_radius"),
    (dict(distance_bin=0), "distance_bin"),
    (dict(distance_bin="2"), "distance_bin"),
])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PathfinderConfig(**kwargs)


def test_bad_arguments_and_impossible_configs():
    with pytest.raises(ValueError, match="count"):
        pathfinder_images(DEFAULT, 0)
    with pytest.raises(TypeError, match="seed"):
        pathfinder_images(DEFAULT, 2, seed=1.0)
    with pytest.raises(TypeError, match="config must be a PathfinderConfig"):
        pathfinder_images(2, DEFAULT)
    with pytest.raises(ValueError, match="could not place paths=12"):
        pathfinder_images(PathfinderConfig(paths=12, path_length=30), 2)
    with pytest.raises(ValueError, match="curves drawn fits"):
        pathfinder_images(PathfinderConfig(size=8, path_length=40, max_turn=0.0), 2)
