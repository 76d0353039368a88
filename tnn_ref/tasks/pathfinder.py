"""Pathfinder (Linsley et al. 2018, as Long-Range Arena uses it): are the two dots joined by one dashed path?

Each image (size x size, binary, LRA's 32 x 32 = 1,024 pixels read in raster order by the sequence
models) holds `paths` smooth random curves drawn as dashes, and two dots (small discs) at curve ends:

- positive (label 1): the dots sit at the two ends of one curve;
- negative (label 0): they sit at one end each of two different curves.

A curve is a walk of `path_length` one-pixel steps whose heading turns by at most `max_turn` radians
per step (uniformly at random), rasterised to the nearest pixel, lit for `dash` steps, dark for `gap`,
and so on. Curves are redrawn until they fit in the image, their ends are at least `separation` apart,
and no part of them looks like a dot.

What makes the label decidable from the image alone: inside one curve (dots included) consecutive lit
pixels are at most gap + 1 pixels apart (Chebyshev distance: max of |row|, |column| differences),
while pixels of different curves are at least `separation` >= gap + 2 apart (rejection sampling). So
joining the lit pixels closer than gap + 2 (a dilation by a (gap+1) x (gap+1) square, then 8-connected
components) recovers every curve, and the label is whether both dots lie in one of them
(`tests/test_pathfinder.py` runs this solver on every image).

What must not decide it: the two classes are drawn with the same number and length of curves (the same
ink up to overlaps), the dotted curves are a random choice among the placed ones, and the distance
between the dots is matched between the classes. A negative dots the pair of ends (one on the first
curve, one on another) whose distance is closest to the end-to-end distance of a fresh random curve, so
its dot distance follows the positives'; then the images are binned by dot distance (`distance_bin`
pixels wide) and each bin keeps as many positives as negatives.

Ids for the sequence models: `pathfinder_sequences` (0 background, 255 ink, as `tnn_ref.tasks.digits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tnn_ref.checks import require_nonnegative_int, require_positive_int
from tnn_ref.tasks.digits import pixel_sequences

CHUNK_PIXELS = 1 << 22  # candidate curves are drawn (and checked) this many image pixels at a time
MAX_CANDIDATES_PER_IMAGE = 2000  # curves one image may draw before generation gives up on the config
RESTART_AFTER = 50  # curves dropped in a row before an image starts again from an empty canvas
MAX_DRAWS_PER_IMAGE = 50  # images drawn per image kept before the distance matching gives up on the config


@dataclass(frozen=True)
class PathfinderConfig:
    """The image and its curves. Defaults: LRA's 32 x 32 with three short curves."""

    size: int = 32  # pixels per side
    paths: int = 3  # curves per image; two carry the dots in negatives
    path_length: int = 24  # steps (pixels of arc) per curve
    dash: int = 3  # lit steps per dash
    gap: int = 2  # dark steps between dashes (0: solid curves)
    max_turn: float = 0.5  # radians the heading may turn per step
    separation: int = 4  # minimum Chebyshev distance between pixels of different curves (dots included)
    dot_radius: float = 1.5  # a dot: the pixels within this distance of a curve's end pixel (1.5: a 3 x 3 square)
    distance_bin: float = 2.0  # pixels: the dot distance is matched between classes within bins this wide

    def __post_init__(self):
        for name in ("size", "paths", "path_length", "dash", "separation"):
            require_positive_int(name, getattr(self, name))
        require_nonnegative_int("gap", self.gap)  # 0: solid curves
        if self.size < 8:
            raise ValueError(f"size must be >= 8 pixels, got {self.size}")
        if self.paths < 2:
            raise ValueError(f"paths must be >= 2 (a negative puts its dots on two different curves), got {self.paths}")
        if self.separation < max(self.gap + 2, 3):
            raise ValueError(f"separation must be >= max(gap + 2, 3) = {max(self.gap + 2, 3)} (farther apart than the "
                             f"gaps inside a curve, so the curves can be told apart), got {self.separation}")
        if self.path_length < 2 * self.separation:
            raise ValueError(f"path_length must be >= 2 * separation = {2 * self.separation} (room for its two ends "
                             f"to lie separation apart), got {self.path_length}")
        if self.path_length > self.size * self.size:
            raise ValueError(f"path_length must be <= size * size = {self.size ** 2} (no curve that long fits), "
                             f"got {self.path_length}")
        for name, low, high, meaning in (("max_turn", 0, math.pi, "radians per step"),
                                         ("dot_radius", 1, self.separation, "pixels, at most separation"),
                                         ("distance_bin", 0, self.size, "pixels, positive")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high:g}] ({meaning}), got {value!r}")
        if self.distance_bin == 0:
            raise ValueError("distance_bin must be positive (the width of a dot-distance bin, in pixels), got 0")

    @property
    def dot_offsets(self) -> np.ndarray:
        """(k, 2) int: the (row, column) offsets of a dot's pixels from its centre."""
        reach = math.floor(self.dot_radius)
        rows, cols = np.mgrid[-reach : reach + 1, -reach : reach + 1]  # (2r+1, 2r+1) each
        inside = rows ** 2 + cols ** 2 <= self.dot_radius ** 2
        return np.stack([rows[inside], cols[inside]], axis=1)

    @property
    def dot_footprint(self) -> np.ndarray:
        """(2r+1, 2r+1) bool: the dot's shape, centred."""
        reach = math.floor(self.dot_radius)
        footprint = np.zeros((2 * reach + 1, 2 * reach + 1), dtype=bool)
        footprint[tuple((self.dot_offsets + reach).T)] = True
        return footprint


@dataclass
class _Shapes:
    """Accepted curve shapes, each in its own frame (to be shifted into place): per shape, lit (m, 2) int
    (row, column) of its lit pixels, dots (2, k, 2) int of the dot pixels at its two ends, ends (2, 2) int
    of the two end pixels, and extent (2,) int: height and width of the box holding it with its dots."""

    lit: np.ndarray  # (count, lit steps, 2)
    dots: np.ndarray  # (count, 2, k, 2)
    ends: np.ndarray  # (count, 2, 2)
    extent: np.ndarray  # (count, 2)

    def __len__(self) -> int:
        return len(self.ends)


def _random_walks(config: PathfinderConfig, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, path_length, 2) float (row, column) points from (0, 0): one-pixel steps, each turning by at
    most max_turn from the one before."""
    turns = rng.uniform(-config.max_turn, config.max_turn, size=(count, config.path_length - 2))  # (count, L-2)
    heading = rng.uniform(0, 2 * math.pi, size=(count, 1)) + np.concatenate(
        [np.zeros((count, 1)), np.cumsum(turns, axis=1)], axis=1)  # (count, L-1): one heading per step
    steps = np.stack([np.sin(heading), np.cos(heading)], axis=2)  # (count, L-1, 2)
    return np.concatenate([np.zeros((count, 1, 2)), np.cumsum(steps, axis=1)], axis=1)  # (count, L, 2)


def _erode(masks: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(count, H, W) bool: the pixels whose every `offsets` neighbour is lit (outside the image counts as dark)."""
    reach = int(np.abs(offsets).max())
    padded = np.pad(masks, ((0, 0), (reach, reach), (reach, reach)))  # (count, H + 2r, W + 2r)
    height, width = masks.shape[1:]
    eroded = np.ones_like(masks)
    for dr, dc in offsets:
        eroded &= padded[:, reach + dr : reach + dr + height, reach + dc : reach + dc + width]
    return eroded


def _dot_check(config: PathfinderConfig, shapes: _Shapes) -> np.ndarray:
    """(count,) bool: for every choice of dotted ends (none, either, both), eroding the drawn shape with
    the dot's footprint leaves exactly the dotted end pixels, so a dot is never missed, merged or imitated."""
    count, size = len(shapes), config.size
    index = np.arange(count)[:, None]  # (count, 1)
    lit = np.zeros((count, size, size), dtype=bool)
    lit[index, shapes.lit[..., 0], shapes.lit[..., 1]] = True
    dots = np.zeros((2, count, size, size), dtype=bool)
    centres = np.zeros((2, count, size, size), dtype=bool)
    for end in range(2):
        dots[end][index, shapes.dots[:, end, :, 0], shapes.dots[:, end, :, 1]] = True
        centres[end][np.arange(count), shapes.ends[:, end, 0], shapes.ends[:, end, 1]] = True
    good = np.ones(count, dtype=bool)
    for first, second in ((False, False), (True, False), (False, True), (True, True)):
        eroded = _erode(lit | (dots[0] & first) | (dots[1] & second), config.dot_offsets)  # (count, H, W)
        good &= (eroded == ((centres[0] & first) | (centres[1] & second))).all(axis=(1, 2))
    return good


def _draw_shapes(config: PathfinderConfig, count: int, rng: np.random.Generator) -> _Shapes:
    """Candidate curves rasterised to the nearest pixel, kept when they fit in the image with their dots,
    their ends lie `separation` apart and the dots pass `_dot_check`."""
    pixels = np.floor(_random_walks(config, count, rng) + 0.5).astype(np.int64)  # (count, L, 2); no half-to-even
    margin = math.floor(config.dot_radius)  # the dots stick out this far from the end pixels
    pixels -= pixels.min(axis=1, keepdims=True) - margin  # (count, L, 2): the box starts at (0, 0)
    extent = pixels.max(axis=1) + margin + 1  # (count, 2)
    ends = pixels[:, [0, -1]]  # (count, 2, 2)
    keep = (extent <= config.size).all(axis=1)
    keep &= np.linalg.norm((ends[:, 0] - ends[:, 1]).astype(float), axis=1) >= config.separation
    on = np.arange(config.path_length) % (config.dash + config.gap) < config.dash  # (L,): the dash pattern
    dots = ends[:, :, None, :] + config.dot_offsets[None, None]  # (count, 2, k, 2)
    shapes = _Shapes(pixels[keep][:, on], dots[keep], ends[keep], extent[keep])
    good = _dot_check(config, shapes)
    return _Shapes(shapes.lit[good], shapes.dots[good], shapes.ends[good], shapes.extent[good])


class _ShapeSupply:
    """Accepted shapes, handed out one at a time in drawing order, drawn in chunks as needed."""

    def __init__(self, config: PathfinderConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.shapes: _Shapes | None = None
        self.next = 0

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lit (m, 2), dots (2, k, 2), ends (2, 2), extent (2,)) of the next shape."""
        while self.shapes is None or self.next == len(self.shapes):
            walks = max(CHUNK_PIXELS // self.config.size ** 2, 64)
            self.shapes, self.next = _draw_shapes(self.config, walks, self.rng), 0
            if len(self.shapes) == 0:
                raise ValueError(f"not one of {walks} curves drawn fits: path_length="
                                 f"{self.config.path_length} with max_turn={self.config.max_turn} does not fit "
                                 f"size={self.config.size} with its ends separation={self.config.separation} apart")
        i, self.next = self.next, self.next + 1
        return self.shapes.lit[i], self.shapes.dots[i], self.shapes.ends[i], self.shapes.extent[i]


def _free_offsets(reach: np.ndarray, ink: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """(H-h+1, W-w+1) bool over the shifts that keep a shape (h, w = extent) in the image: True where none
    of its `ink` pixels (p, 2) lands on `reach` (H, W). The slow, obviously correct version."""
    mask = np.zeros(tuple(extent), dtype=bool)
    mask[ink[:, 0], ink[:, 1]] = True  # (h, w): the shape in its box
    windows = np.lib.stride_tricks.sliding_window_view(reach, tuple(extent))  # (H-h+1, W-w+1, h, w)
    return ~(windows & mask).any(axis=(2, 3))


def _row_bits(mask: np.ndarray) -> np.ndarray:
    """(rows, W <= 64) bool -> (rows,) uint64 with bit j set where column j is."""
    words = np.zeros((len(mask), 8), dtype=np.uint8)
    words[:, : (mask.shape[1] + 7) // 8] = np.packbits(mask, axis=1, bitorder="little")  # (rows, ceil(W/8))
    return words.view("<u8")[:, 0]  # (rows, 8) -> (rows,)


def _free_offsets_packed(reach: np.ndarray, ink: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """`_free_offsets` for images at most 64 pixels wide, on rows packed into 64-bit words: the shape's
    row i hits the reach at shift (r, c) where (reach row r + i) >> c shares a bit with it."""
    height, width = extent
    rows, columns = reach.shape[0] - height + 1, reach.shape[1] - width + 1
    mask = np.zeros(tuple(extent), dtype=bool)
    mask[ink[:, 0], ink[:, 1]] = True  # (h, w)
    shifted = _row_bits(reach)[None, :] >> np.arange(columns, dtype=np.uint64)[:, None]  # (W-w+1, H)
    step = shifted.strides[1]  # a read-only view of every h rows starting at each row (sliding_window_view, cheaper)
    windows = np.lib.stride_tricks.as_strided(shifted, shape=(columns, rows, height),
                                              strides=(shifted.strides[0], step, step), writeable=False)
    return ~(windows & _row_bits(mask)).any(axis=2).T  # (W-w+1, H-h+1, h) -> (H-h+1, W-w+1)


def _window(config: PathfinderConfig) -> np.ndarray:
    """(q, 2) int: the offsets at Chebyshev distance < separation (a (2s-1) x (2s-1) square)."""
    reach = np.arange(1 - config.separation, config.separation)
    return np.stack(np.meshgrid(reach, reach, indexing="ij"), axis=-1).reshape(-1, 2)  # (2s-1, 2s-1, 2) -> (q, 2)


def _place_curves(config: PathfinderConfig, supply: _ShapeSupply) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`paths` curves at least `separation` apart: (lit (m, 2), dots (2, k, 2), ends (2, 2)) in image
    coordinates, per curve, in random order.

    Each shape in turn goes to a uniformly random position among those that keep it in the image and far
    enough from the curves placed so far; a shape with no such position is dropped, and after
    RESTART_AFTER drops in a row the image starts again from an empty canvas.
    """
    size, window = config.size, _window(config)
    free_offsets = _free_offsets_packed if size <= 64 else _free_offsets
    placed, reach, drops = [], np.zeros((size, size), dtype=bool), 0
    for _ in range(MAX_CANDIDATES_PER_IMAGE):
        lit, dots, ends, extent = supply.take()
        ink = np.concatenate([lit, dots.reshape(-1, 2)])  # (m + 2k, 2): both dots count, drawn or not
        if placed:
            free = np.flatnonzero(free_offsets(reach, ink, extent))  # flat indices into (H-h+1, W-w+1)
        else:  # the first curve may go anywhere it fits
            free = np.arange((size - extent[0] + 1) * (size - extent[1] + 1))
        if len(free) == 0:
            drops += 1
            if drops == RESTART_AFTER:
                placed, reach, drops = [], np.zeros_like(reach), 0
            continue
        offset = np.array(divmod(int(free[supply.rng.integers(len(free))]), size - int(extent[1]) + 1))  # (2,)
        placed.append((lit + offset, dots + offset, ends + offset))
        near = ((ink + offset)[:, None] + window[None]).reshape(-1, 2)  # (m + 2k, q, 2) -> (.., 2)
        inside = ((near >= 0) & (near < size)).all(axis=1)
        reach[near[inside, 0], near[inside, 1]] = True
        drops = 0
        if len(placed) == config.paths:
            order = supply.rng.permutation(config.paths)  # which curves carry the dots: not the placing order
            return [placed[j] for j in order]
    raise ValueError(f"could not place paths={config.paths} curves of path_length={config.path_length} "
                     f"separation={config.separation} apart in a size={config.size} image in "
                     f"{MAX_CANDIDATES_PER_IMAGE} draws: lower paths, path_length or separation")


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((a - b).astype(float)))


def _draw_image(config: PathfinderConfig, label: int, supply: _ShapeSupply) -> tuple[np.ndarray, float]:
    """One (H, W) bool image with the given label, and the distance (pixels) between its two dots.

    A positive dots both ends of the first curve. A negative dots one end of the first curve and one end
    of another, the pair of ends whose distance is closest to the end-to-end distance of a further random
    curve (one not in the image): so negatives' dot distances follow the positives' closely, and the
    matching in `pathfinder_images` has little to discard.
    """
    curves = _place_curves(config, supply)
    image = np.zeros((config.size, config.size), dtype=bool)
    for lit, _, _ in curves:
        image[lit[:, 0], lit[:, 1]] = True
    _, dots_a, ends_a = curves[0]
    if label == 1:
        spots, centres = dots_a.reshape(-1, 2), ends_a  # (2k, 2), (2, 2)
    else:
        target_ends = supply.take()[2]  # (2, 2): a positive's dot distance, drawn afresh
        target = _distance(target_ends[0], target_ends[1])
        options = [(abs(_distance(ends_a[i], ends[j]) - target), c, i, j)
                   for c, (_, _, ends) in enumerate(curves[1:], start=1) for i in range(2) for j in range(2)]
        _, c, i, j = min(options)
        _, dots_b, ends_b = curves[c]
        spots, centres = np.concatenate([dots_a[i], dots_b[j]]), np.stack([ends_a[i], ends_b[j]])
    image[spots[:, 0], spots[:, 1]] = True
    return image, _distance(centres[0], centres[1])


def pathfinder_images(config: PathfinderConfig, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (count, 1, size, size) float32 in {0, 1}, labels (count,) long: 1 = the dots are joined),
    count - count // 2 positive and count // 2 negative, in random order; deterministic for a seed.

    Images are drawn alternately positive and negative; each is binned by its dot distance and paired with
    the first unpaired image of the other class in its bin, and the first pairs made are kept.
    """
    if not isinstance(config, PathfinderConfig):
        raise TypeError(f"config must be a PathfinderConfig, got {type(config).__name__}")
    require_positive_int("count", count)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    rng = np.random.default_rng(seed)
    supply = _ShapeSupply(config, rng)
    positives = count - count // 2
    unpaired: dict[tuple[int, int], list[np.ndarray]] = {}  # (label, bin) -> images waiting for a partner
    pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (positive, negative), one distance bin each
    for drawn in range(MAX_DRAWS_PER_IMAGE * count):
        label = drawn % 2
        image, distance = _draw_image(config, label, supply)
        key = int(distance // config.distance_bin)
        partners = unpaired.get((1 - label, key))
        if not partners:
            unpaired.setdefault((label, key), []).append(image)
            continue
        partner = partners.pop(0)
        pairs.append((image, partner) if label == 1 else (partner, image))
        if len(pairs) == positives:
            break
    else:
        raise ValueError(f"the dot distances of positives and negatives hardly overlap for this config: raise "
                         f"distance_bin (now {config.distance_bin}) or change path_length or max_turn")
    kept = [positive for positive, _ in pairs] + [negative for _, negative in pairs][: count // 2]
    labels = np.array([1] * positives + [0] * (count // 2))
    order = rng.permutation(count)
    images = np.stack(kept)[order][:, None].astype(np.float32)  # (count, H, W) -> (count, 1, H, W)
    return torch.from_numpy(images), torch.from_numpy(labels[order]).long()


def pathfinder_sequences(images: torch.Tensor) -> torch.Tensor:
    """Images (N, 1, H, W) in [0, 1] -> token ids (N, H*W) in [0, 256) in raster order (`pixel_sequences`):
    0 for background, 255 for ink."""
    return pixel_sequences(images)
