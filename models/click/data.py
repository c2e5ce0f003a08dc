"""Scenes with one target object for the click model: synthetic textured shapes with soft edges inserted into
real images, the coins of ``coins.png``, MNI152 tissue components; 8- or 16-bit. Held-out scenes use the
held-out backgrounds (camera, moon) and the held-out MNI slab only.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..common.data import (
    HELD_OUT_IMAGES,
    load_gray,
    mni_heldout_slab,
    mni_orthogonal_slices,
    mni_train_z_ranges,
    mni_volume,
    train_images,
)

MIN_AREA = 60


def radial_shape(rng, hw, centre, radius) -> np.ndarray:
    """A random star-shaped blob (Fourier-perturbed radius) or a polygon, as a uint8 mask."""
    n = 96
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(1, 6):
        r += rng.uniform(0, 0.3 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.3:  # a polygon: few vertices
        m = int(rng.integers(3, 8))
        t = np.sort(rng.uniform(0, 2 * np.pi, m))
        r = rng.uniform(0.6, 1.0, m)
    aspect = rng.uniform(0.5, 1.0)
    rot = rng.uniform(0, np.pi)
    x = r * radius * np.cos(t)
    y = r * radius * aspect * np.sin(t)
    xr = x * np.cos(rot) - y * np.sin(rot) + centre[1]
    yr = x * np.sin(rot) + y * np.cos(rot) + centre[0]
    mask = np.zeros(hw, np.uint8)
    cv2.fillPoly(mask, [np.stack([xr, yr], 1).round().astype(np.int32)], 1)
    return mask


def texture(rng, hw) -> np.ndarray:
    noise = rng.normal(0, 1, hw).astype(np.float32)
    s = rng.uniform(0.5, 4)
    noise = cv2.GaussianBlur(noise, (0, 0), s)
    return noise / (noise.std() + 1e-6)


def background(rng, images, hw) -> np.ndarray:
    img = images[int(rng.integers(len(images)))]
    scale = rng.uniform(0.5, 1.5)
    ch, cw = min(img.shape[0], int(hw[0] / scale)), min(img.shape[1], int(hw[1] / scale))
    y = int(rng.integers(0, img.shape[0] - ch + 1))
    x = int(rng.integers(0, img.shape[1] - cw + 1))
    crop = img[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def insert_object(rng, img, mask, horse=None) -> np.ndarray:
    """Blend a textured object of ``mask`` into ``img`` with a soft edge."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), rng.uniform(0.4, 2.5))
    local = float(img[mask > 0].mean()) if mask.any() else 0.5
    contrast = rng.uniform(0.08, 0.45) * (1 if rng.random() < 0.5 else -1)
    if not 0.05 < local + contrast < 0.95:
        contrast = -contrast
    if rng.random() < 0.4:  # keep the background's texture under the object, shifted and scaled
        obj = img * rng.uniform(0.6, 1.4) + contrast
    else:
        obj = local + contrast + texture(rng, img.shape) * rng.uniform(0, 0.12)
    if rng.random() < 0.3:  # an intensity gradient across the object
        gy, gx = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(np.float32)
        g = (gy * rng.normal() + gx * rng.normal()) / max(img.shape)
        obj = obj + g * rng.uniform(0, 0.2)
    return (img * (1 - alpha) + obj * alpha).astype(np.float32)


class Shapes:
    """Shape templates besides the random blobs: the horse silhouette of skimage."""

    def __init__(self):
        horse = load_gray("horse.png") < 0.5
        ys, xs = np.nonzero(horse)
        self.horse = horse[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)


def synthetic_scene(rng, images, shapes: Shapes, hw=None):
    if hw is None:
        hw = (int(rng.integers(160, 513)), int(rng.integers(160, 513)))
    img = background(rng, images, hw)
    if rng.random() < 0.3:
        img = img * rng.uniform(0.3, 1.0) + rng.uniform(0, 0.3)
    small = min(hw)
    for _ in range(int(rng.integers(0, 4))):  # distractors drawn first: the target lies on top
        c = (rng.uniform(0, hw[0]), rng.uniform(0, hw[1]))
        img = insert_object(rng, img, radial_shape(rng, hw, c, rng.uniform(6, small * 0.25)))
    radius = small * rng.uniform(0.04, 0.3)
    c = (rng.uniform(radius * 0.5, hw[0] - radius * 0.5), rng.uniform(radius * 0.5, hw[1] - radius * 0.5))
    if rng.random() < 0.15:
        side = int(radius * 2)
        h0, w0 = shapes.horse.shape
        f = side / max(h0, w0)
        tpl = cv2.resize(shapes.horse, (max(2, int(w0 * f)), max(2, int(h0 * f))), interpolation=cv2.INTER_NEAREST)
        if rng.random() < 0.5:
            tpl = tpl[:, ::-1]
        mask = np.zeros(hw, np.uint8)
        y0, x0 = int(max(0, c[0] - tpl.shape[0] / 2)), int(max(0, c[1] - tpl.shape[1] / 2))
        part = tpl[:hw[0] - y0, :hw[1] - x0]
        mask[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part
    else:
        mask = radial_shape(rng, hw, c, radius)
    if mask.sum() < MIN_AREA:
        return synthetic_scene(rng, images, shapes, hw)
    img = insert_object(rng, img, mask)
    img = img + rng.normal(0, rng.uniform(0, 0.04), hw).astype(np.float32)
    return img.astype(np.float32), mask.astype(bool)


def coin_objects():
    """The coins of coins.png by the scikit-image watershed recipe (elevation = Sobel, markers by level)."""
    from scipy import ndimage as ndi
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    img = load_gray("coins.png")
    markers = np.zeros(img.shape, np.int32)
    markers[img < 30 / 255] = 1
    markers[img > 150 / 255] = 2
    seg = ndi.binary_fill_holes(watershed(sobel(img), markers) == 2)
    lab, n = ndi.label(seg)
    masks = [lab == i for i in range(1, n + 1) if (lab == i).sum() >= 200]
    return img, masks


def components(lab: np.ndarray) -> list[np.ndarray]:
    """The tissue objects of an MNI label slice: the brain, and each class's connected components."""
    out = []
    brain = (lab > 0).astype(np.uint8)
    for value, m in [(0, brain)] + [(v, (lab == v).astype(np.uint8)) for v in (1, 2, 3)]:
        n, cc, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] >= (MIN_AREA if value else 500):
                out.append(cc == i)
    return out


@dataclass(frozen=True)
class Mix:
    """The shares of the training draws. ``None`` (v2) draws no random number for that choice, so that a
    generator seeded as before gives v2's very scenes (the baselines' tuning scenes are v2's: they must not
    move with the recipe)."""

    synthetic: float  # of the draws; MNI tissue takes the rest after the coins
    coins: float
    brain: float  # of the MNI draws: the whole brain (components()[0]), one object of ~8 per slice
    large: float  # of the other MNI draws: a tissue component of >= LARGE_AREA pixels
    axial: float | None = None  # of the MNI draws: an axial slice (None: any orientation, ~15 % axial)
    native: float | None = None  # of the MNI draws: at the template's own scale (None: always 1-2.2x)
    clean: float | None = None  # of the MNI draws: no added noise (None: always Gaussian, sigma up to 0.05)


V2_MIX = Mix(synthetic=0.47, coins=0.08, brain=0.2, large=0.7)
# v3: validation (models/click/validate.py) showed v2 under-segmenting large white-matter components at one
# click (recall ~0.7 at precision ~0.99) and trailing region grow on MNI; the held-out and validation
# objects are axial slices at the template's scale, so v3 draws more MNI, more large components, more
# axial slices at the native scale and clean ones (the other orientations, scales and noise stay in)
MIX = Mix(synthetic=0.40, coins=0.05, brain=0.15, large=0.85, axial=0.5, native=0.4, clean=0.5)
BRAIN_SHARE, LARGE_SHARE = MIX.brain, MIX.large
AXIAL_SHARE, NATIVE_SHARE, CLEAN_SHARE = MIX.axial, MIX.native, MIX.clean
SYNTHETIC_SHARE, COINS_SHARE = MIX.synthetic, MIX.coins
LARGE_AREA = 300


def pick_component(rng, comps: list[np.ndarray], *, brain: float = BRAIN_SHARE,
                   large_share: float = LARGE_SHARE) -> np.ndarray:
    """One target of an MNI slice's ``components()`` (the brain first). Uniform picks gave the brain 1 in 8
    and fragments < 300 px half of the draws; the model then split the brain and large white-matter regions
    into fragments on training slices outside the held-out slab (its IoU@1 there trailed region grow), so
    the brain and large components are drawn more often."""
    u = rng.random()
    if u < brain:
        return comps[0]
    large = [m for m in comps[1:] if m.sum() >= LARGE_AREA]
    pool = large if large and rng.random() < large_share else comps[1:] or comps
    return pool[int(rng.integers(len(pool)))]


class MniObjects:
    def __init__(self, rng, step=3, mix: Mix = MIX):
        from ..brain_tissue.common import tissue_labels

        self.mix = mix
        t1, gm, wm = mni_volume("t1"), mni_volume("gm"), mni_volume("wm")
        lab = tissue_labels(t1, gm, wm)
        self.items, self.axial = [], []
        for zr in mni_train_z_ranges(t1.shape[2]):
            n_axial = len(range(0, zr[1] - zr[0], step))  # mni_orthogonal_slices lists the axial ones first
            for j, (im, lb) in enumerate(zip(mni_orthogonal_slices(t1, zr, step),
                                             mni_orthogonal_slices(lab, zr, step))):
                if (lb > 0).sum() >= 2000:
                    if j < n_axial:
                        self.axial.append(len(self.items))
                    self.items.append((im.astype(np.float32), lb))

    def scene(self, rng):
        mix = self.mix
        if mix.axial is not None and self.axial and rng.random() < mix.axial:
            im, lb = self.items[self.axial[int(rng.integers(len(self.axial)))]]
        else:
            im, lb = self.items[int(rng.integers(len(self.items)))]
        comps = components(lb)
        if not comps:
            return self.scene(rng)
        m = pick_component(rng, comps, brain=mix.brain, large_share=mix.large)
        f = 1.0 if mix.native is not None and rng.random() < mix.native else rng.uniform(1.0, 2.2)
        hw = (int(im.shape[0] * f), int(im.shape[1] * f))
        img = cv2.resize(im, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(m.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
        img = img * rng.uniform(0.7, 1.3)
        if mix.clean is None or rng.random() >= mix.clean:
            img = img + rng.normal(0, rng.uniform(0, 0.05), hw).astype(np.float32)
        return img.astype(np.float32), mask


def to_bits(rng, img: np.ndarray) -> np.ndarray:
    """The scene as an 8-bit or a 16-bit image (random gain and offset in 16-bit), as the app would read it."""
    img = np.clip(img, 0, 1)
    if rng.random() < 0.6:
        return np.round(img * 255).astype(np.uint8)
    gain = rng.uniform(1000, 60000)
    off = rng.uniform(0, 65535 - gain)
    return np.round(img * gain + off).astype(np.uint16)


class TrainScenes:
    def __init__(self, rng, mix: Mix = MIX):
        self.mix = mix
        self.images = train_images()
        self.shapes = Shapes()
        self.coins_img, self.coins = coin_objects()
        self.mni = MniObjects(rng, mix=mix)

    def summary(self) -> str:
        return (f"{len(self.images)} background images, {len(self.coins)} coins, "
                f"{len(self.mni.items)} MNI training slices")

    def draw(self, rng):
        u = rng.random()
        if u < self.mix.synthetic:
            img, mask = synthetic_scene(rng, self.images, self.shapes)
        elif u < self.mix.synthetic + self.mix.coins:
            img, mask = self.coins_img, self.coins[int(rng.integers(len(self.coins)))]
            img = img * rng.uniform(0.7, 1.2) + rng.normal(0, rng.uniform(0, 0.03), img.shape).astype(np.float32)
            if rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
        else:
            img, mask = self.mni.scene(rng)
        if rng.random() < 0.5:
            img, mask = img.T, mask.T
        return to_bits(rng, np.ascontiguousarray(img)), np.ascontiguousarray(mask)


HELDOUT_SEED = 20261201
HELDOUT_PER_IMAGE = 10
HELDOUT_MNI_Z = (76, 84, 92)


def heldout_scenes(shapes: Shapes | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, uint8/uint16 image, mask)`` of the held-out set: synthetic objects on camera and moon (the
    objects' generator is the training one, the backgrounds are never trained on), the tissue components of
    three held-out MNI slab slices (brain, and components >= 300 px), in 8 and 16 bit."""
    rng = np.random.default_rng(HELDOUT_SEED)
    shapes = shapes or Shapes()
    out = []
    for name in HELD_OUT_IMAGES:
        bg = [load_gray(name)]
        for i in range(HELDOUT_PER_IMAGE):
            img, mask = synthetic_scene(rng, bg, shapes, hw=(bg[0].shape[0], bg[0].shape[1]))
            out.append((f"{name}#{i}", to_bits(rng, img), mask))
    z, t1, labels = mni_heldout_slab()
    for k in HELDOUT_MNI_Z:
        j = int(np.flatnonzero(z == k)[0])
        comps = [m for m in components(labels[j]) if m.sum() >= 300]
        for i, m in enumerate(comps):
            img = t1[j] if i % 2 == 0 else t1[j]  # the template itself, 8- or 16-bit alternately
            bits = np.round(img * 255).astype(np.uint8) if i % 2 == 0 else \
                np.round(img * 40000 + 1000).astype(np.uint16)
            out.append((f"mni_z{k}#{i}", bits, m))
    return out


def is_heldout_name(name: str) -> bool:
    return any(name.startswith(h) for h in HELD_OUT_IMAGES)
