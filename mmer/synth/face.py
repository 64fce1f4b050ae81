"""Synthetic emotional faces: real photographs, deformed by emotion, composited in YUV.

Pure functions (arrays in, arrays out, numpy only); the only
input they read is the photographs that scikit-image ships (``skimage.data.astronaut`` and
the faces among the first 100 images of ``skimage.data.lfw_subset``), which need no
download. ``skimage.data.camera()`` is not used: its man is seen in profile, where
MediaPipe's short-range face detector (the one the ``face_crops`` stage runs) finds no
face, and the frontal deformation model below does not apply.

Geometry
--------
Every face is handled in *normalised face coordinates*: origin between the eyes, x to
the right of the image, y down, unit = the inter-ocular distance (IOD). Each photograph
comes with five landmarks (eye centres, mouth corners, mouth centre) and the chin, which
were measured once with MediaPipe face mesh (``refine_landmarks=True``) on the faces
upscaled onto a white canvas; they are kept in :data:`FACE_SOURCES` so that rendering
needs no detector and gives the same pixels on every machine.

Expression
----------
An expression is a set of facial action units (FACS-like: inner/outer brow raise, brow
lowerer, lid raise/tighten, cheek raise, lip corner pull/depress, lip stretch, lip press,
upper lip raise, chin raise) plus a mouth opening and a share of visible teeth. Each unit
moves a few control points (brows, lids, cheeks, mouth corners, lips, chin); the moves
are turned into a smooth displacement field by Gaussian radial basis functions that pass
exactly through the control moves (:func:`displacement_field`) and the photograph is
resampled through it (a backward warp, bilinear). An open mouth is painted as a dark
interior, with a band of teeth when the expression shows them, and the skin folds that
the units make (brow furrows, forehead lines, nasolabial folds, crow's feet, nose
wrinkles, the chin crease; :data:`WRINKLES`) and the eye whites of widened eyes are shaded
in, so that a blurry 25-pixel LFW face still shows its expression in a 64x64 crop.

Emotion prototypes (:data:`EMOTION_UNITS`) and what the face alone confuses
--------------------------------------------------------------------------
========== ============================================================================
neutral    nothing
calm       lids slightly lowered, a trace of a smile: close to neutral (confused)
happy      lip corners pulled up and out, cheeks raised, lips parted with teeth
sad        inner brows raised and drawn together, lip corners down, chin raised
angry      brows lowered and drawn together, lids tightened, lips pressed
disgust    brows lowered, lids tightened, upper lip raised, corners slightly down:
           shares brows and eyes with angry, so the face confuses the two
fearful    brows raised (inner more) and drawn together, eyes wide, lips stretched,
           mouth open: shares brows, eyes and open mouth with surprised
surprised  brows raised, eyes wide, jaw dropped (round open mouth)
========== ============================================================================

The face separates happy from surprised and sad from neutral/calm, which the voice
confuses (see :mod:`mmer.synth.voice`); the voice separates angry from disgust and
fearful from surprised, which the face confuses.

Frames
------
Frames are composited directly in YUV 4:2:0 (BT.601, limited range, what ffmpeg assumes
for untagged video), so the encoder needs no colour conversion: the background (a light
wall, the actor's neck and dark shirt) is made once per clip, the face patch once per
mouth-opening level, and each frame is the background with one patch blended in at an
even pixel offset (:func:`composite_yuv420`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

# landmark order in FACE_SOURCES: image-left eye, image-right eye, left mouth corner,
# right mouth corner, mouth centre, chin; (x, y) in source pixels
LANDMARK_NAMES = ("eye_l", "eye_r", "mouth_l", "mouth_r", "mouth_c", "chin")
LFW_SIZE = 25
LFW_UPSAMPLE = 4  # LFW faces are resampled once to 100 px (bicubic) before warping
LFW_BLUR = 0.45  # source pixels: softens the JPEG blocks of the 25 px faces before resampling
HAIR_ELLIPSE = (0.0, -0.50, 1.42, 1.30)  # drawn behind LFW heads, normalised face coordinates
JAW_DROP = 0.8  # the chin moves down this share of the mouth opening
MAX_OPENING = 0.5  # IOD units

# fmt: off
# MediaPipe face mesh landmarks of the LFW faces used here (index in lfw_subset()[:100]).
# Left out: faces with an open mouth, a hand or dark glasses, or too dark to see.
_LFW_FEMALE = {
    18: ((5.8, 9.0), (15.3, 9.2), (6.8, 17.4), (14.2, 17.6), (10.4, 18.2), (10.0, 23.9)),
    31: ((5.2, 9.5), (14.4, 8.4), (7.1, 18.3), (15.5, 16.8), (11.0, 18.1), (12.3, 24.6)),
    37: ((7.0, 10.6), (15.3, 9.7), (7.8, 17.5), (16.1, 16.5), (12.1, 16.9), (12.7, 23.8)),
    45: ((6.5, 8.5), (15.0, 8.5), (7.0, 18.2), (15.0, 17.8), (10.7, 18.7), (11.0, 24.0)),
    46: ((6.1, 9.7), (14.6, 8.5), (8.5, 18.8), (14.3, 18.4), (11.3, 18.5), (11.9, 24.1)),
    50: ((6.1, 8.5), (15.1, 8.6), (7.1, 17.6), (14.7, 17.6), (10.9, 18.3), (10.9, 24.4)),
    52: ((5.8, 9.1), (15.1, 8.5), (6.2, 17.4), (15.6, 16.7), (11.1, 17.6), (10.6, 23.9)),
    57: ((5.6, 10.0), (14.5, 9.6), (7.5, 20.4), (13.3, 20.4), (9.9, 20.7), (11.3, 24.2)),
    75: ((5.2, 8.6), (12.7, 9.7), (5.0, 18.1), (10.0, 18.7), (6.8, 17.9), (7.3, 23.9)),
    82: ((5.6, 8.1), (14.9, 7.7), (6.6, 18.1), (15.1, 17.0), (10.5, 17.3), (10.4, 23.8)),
    91: ((6.2, 9.1), (15.6, 8.5), (7.7, 19.1), (15.3, 18.2), (11.5, 18.9), (12.0, 24.4)),
    93: ((6.5, 8.9), (16.3, 8.6), (7.6, 17.7), (15.8, 17.4), (11.6, 18.1), (12.0, 24.3)),
    94: ((7.0, 7.7), (15.7, 8.0), (7.1, 16.6), (15.3, 16.9), (11.4, 18.0), (11.4, 24.3)),
    99: ((6.4, 8.7), (15.2, 8.4), (7.8, 18.6), (14.0, 18.5), (10.5, 18.4), (10.7, 24.8)),
}
_LFW_MALE = {
    1: ((4.7, 8.7), (13.4, 8.9), (6.0, 17.7), (13.5, 17.6), (9.3, 17.7), (9.4, 23.8)),
    2: ((5.3, 8.8), (13.3, 7.4), (6.8, 18.4), (14.0, 17.3), (10.6, 17.9), (11.0, 24.3)),
    3: ((6.8, 9.4), (15.5, 9.4), (8.0, 18.5), (14.8, 18.4), (11.3, 18.5), (11.5, 24.2)),
    6: ((5.1, 9.5), (14.8, 9.5), (6.4, 19.5), (13.8, 19.6), (10.1, 19.7), (10.1, 24.6)),
    7: ((6.4, 9.0), (15.2, 8.7), (8.6, 19.6), (14.3, 19.5), (11.1, 19.6), (11.6, 24.7)),
    8: ((6.8, 9.5), (15.3, 9.4), (7.4, 17.4), (15.2, 17.3), (11.4, 17.6), (10.7, 23.5)),
    10: ((6.1, 9.2), (15.7, 8.4), (7.3, 18.3), (15.0, 18.0), (10.8, 18.4), (11.4, 24.6)),
    15: ((8.1, 8.9), (15.8, 8.5), (9.6, 17.6), (15.5, 17.2), (12.8, 17.7), (13.3, 23.2)),
    17: ((8.1, 8.6), (15.6, 8.2), (9.8, 16.6), (15.6, 16.1), (12.9, 15.9), (13.2, 22.5)),
    20: ((5.1, 8.9), (14.5, 8.5), (6.4, 17.7), (13.5, 17.5), (9.7, 17.5), (9.9, 23.8)),
    23: ((7.7, 9.1), (16.3, 8.0), (8.0, 16.7), (16.5, 16.2), (12.3, 17.2), (13.2, 23.6)),
    24: ((7.0, 8.9), (15.2, 8.6), (8.2, 18.6), (14.5, 18.3), (11.6, 18.0), (11.8, 24.0)),
    25: ((7.8, 8.4), (16.6, 9.0), (9.3, 17.7), (15.2, 17.9), (12.3, 17.5), (12.2, 23.9)),
    27: ((5.6, 9.6), (14.9, 8.6), (7.1, 17.7), (15.5, 16.6), (11.3, 17.1), (11.7, 23.8)),
    28: ((6.8, 7.8), (15.7, 8.9), (7.6, 18.3), (13.3, 18.6), (10.1, 18.4), (10.0, 24.9)),
    35: ((5.3, 8.4), (14.4, 8.2), (5.9, 18.4), (12.0, 18.8), (8.3, 18.1), (8.8, 23.8)),
    36: ((7.2, 8.6), (15.4, 9.5), (7.3, 17.6), (14.5, 18.0), (10.9, 18.5), (10.3, 24.4)),
    39: ((5.6, 9.1), (14.0, 8.0), (8.0, 17.7), (13.6, 16.8), (10.9, 17.2), (11.9, 23.8)),
    40: ((5.8, 9.8), (13.5, 9.1), (8.3, 19.9), (12.5, 19.7), (9.9, 19.5), (10.6, 24.8)),
    41: ((6.4, 8.6), (15.0, 8.4), (7.3, 17.2), (14.6, 17.3), (10.7, 17.8), (11.0, 24.8)),
    42: ((5.8, 8.4), (14.5, 7.5), (8.2, 18.1), (13.4, 17.7), (10.6, 17.7), (10.9, 24.1)),
    44: ((8.1, 7.7), (16.4, 8.6), (10.0, 17.9), (16.1, 18.0), (13.3, 17.7), (13.4, 24.7)),
    48: ((6.6, 9.6), (14.2, 9.1), (7.8, 17.7), (12.6, 17.6), (10.0, 17.8), (10.1, 22.3)),
    54: ((5.7, 8.5), (15.0, 8.4), (9.2, 18.9), (13.6, 18.5), (11.2, 18.7), (11.6, 24.7)),
    58: ((9.3, 9.6), (17.2, 9.0), (10.9, 18.5), (16.6, 18.4), (13.1, 18.5), (14.2, 24.3)),
    60: ((6.0, 8.8), (15.1, 8.6), (8.0, 18.8), (13.8, 18.6), (10.9, 18.5), (11.1, 25.0)),
    61: ((6.2, 9.4), (15.1, 8.6), (7.5, 18.7), (14.9, 18.2), (11.8, 18.3), (11.8, 24.1)),
    62: ((6.4, 9.3), (14.7, 9.5), (8.0, 18.5), (13.3, 18.5), (10.8, 18.5), (10.8, 23.6)),
    63: ((4.6, 8.0), (13.5, 7.3), (6.2, 17.6), (13.6, 17.4), (9.2, 17.6), (10.5, 23.9)),
    66: ((6.2, 8.8), (14.9, 8.6), (8.8, 18.2), (13.0, 18.1), (11.0, 17.8), (11.0, 24.2)),
    70: ((7.8, 8.0), (15.5, 8.7), (7.8, 16.4), (14.1, 17.0), (11.3, 16.6), (10.6, 21.7)),
    72: ((6.3, 8.6), (15.6, 8.2), (7.7, 18.6), (14.8, 18.4), (11.4, 18.7), (11.5, 24.6)),
    73: ((6.1, 9.0), (14.4, 8.3), (7.5, 18.5), (14.7, 18.3), (10.8, 18.6), (11.3, 24.8)),
    76: ((7.0, 8.9), (16.4, 7.9), (10.3, 19.2), (16.8, 18.5), (13.0, 18.4), (14.0, 24.5)),
    80: ((6.5, 9.6), (15.8, 9.6), (8.0, 18.5), (14.6, 18.5), (11.5, 18.5), (11.6, 24.8)),
    86: ((6.6, 8.4), (15.8, 8.5), (7.4, 18.6), (14.6, 18.8), (10.8, 19.3), (11.0, 24.8)),
    87: ((7.8, 9.4), (15.5, 8.7), (10.2, 18.6), (15.8, 17.9), (13.3, 17.9), (13.5, 23.8)),
    89: ((4.0, 10.6), (12.5, 8.6), (6.1, 19.2), (12.8, 18.0), (9.1, 18.4), (9.4, 25.0)),
    90: ((7.4, 8.8), (15.6, 8.4), (9.0, 18.5), (15.6, 18.3), (12.4, 18.6), (12.5, 24.5)),
    92: ((6.6, 9.5), (15.2, 8.5), (9.0, 18.5), (14.7, 17.7), (12.1, 17.6), (12.7, 23.9)),
    95: ((6.5, 8.5), (15.8, 8.1), (7.8, 18.5), (14.2, 18.4), (11.2, 18.5), (11.0, 24.1)),
    98: ((7.5, 8.6), (16.4, 8.5), (8.6, 18.6), (15.5, 18.5), (12.0, 18.8), (12.1, 24.1)),
}
# fmt: on


@dataclass(frozen=True)
class FaceSource:
    """One photograph of a face and where its features are.

    Attributes
    ----------
    name : str
        ``astronaut`` or ``lfw-NN``.
    sex : str
        ``female`` or ``male`` (used to give odd actors male faces).
    landmarks : tuple of (x, y)
        In source pixels, in the order of :data:`LANDMARK_NAMES`.
    head : tuple
        Head ellipse in normalised face coordinates: centre x, centre y, half-width,
        half-height. The photograph is faded out beyond it.
    crop : tuple
        Rows and columns of the photograph used: (top, bottom, left, right).
    hair : bool
        Draw a hair silhouette behind the head (the tight LFW crops show no hair).
    """

    name: str
    sex: str
    landmarks: tuple[tuple[float, float], ...]
    head: tuple[float, float, float, float]
    crop: tuple[int, int, int, int]
    hair: bool

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """x0, x1, y0, y1 (normalised) of a patch that holds the head, hair and open jaw."""
        cx, cy, half_w, half_h = self.head
        x0, x1, y0, y1 = cx - half_w, cx + half_w, cy - half_h, cy + half_h
        if self.hair:
            hx, hy, hw, hh = HAIR_ELLIPSE
            x0, x1, y0 = min(x0, hx - hw), max(x1, hx + hw), min(y0, hy - hh)
        margin = 0.1
        return (x0 - margin, x1 + margin, y0 - margin, y1 + margin + JAW_DROP * MAX_OPENING)


def _lfw_source(index: int, sex: str, landmarks: tuple) -> FaceSource:
    return FaceSource(f"lfw-{index:02d}", sex, landmarks, (0.0, 0.35, 1.28, 1.62), (0, LFW_SIZE, 0, LFW_SIZE), True)


FACE_SOURCES: dict[str, FaceSource] = {
    "astronaut": FaceSource(
        "astronaut",
        "female",
        ((204.0, 101.6), (247.1, 104.1), (202.4, 139.6), (246.0, 140.9), (223.4, 147.1), (221.1, 177.6)),
        (0.0, -0.05, 1.8, 1.95),
        (0, 300, 100, 360),
        False,
    ),
    **{f"lfw-{i:02d}": _lfw_source(i, "female", lm) for i, lm in _LFW_FEMALE.items()},
    **{f"lfw-{i:02d}": _lfw_source(i, "male", lm) for i, lm in _LFW_MALE.items()},
}


def face_names(sex: str) -> list[str]:
    """The names of the face sources of one sex, in a fixed order (photographs first)."""
    if sex not in ("female", "male"):
        raise ConfigError(f"sex must be 'female' or 'male', not {sex!r}")
    return [name for name, source in FACE_SOURCES.items() if source.sex == sex]


@functools.lru_cache(maxsize=8)
def source_image(name: str) -> np.ndarray:
    """The photograph of a face source, cropped, float32 RGBA in [0, 1] (cached per process).

    LFW faces (25x25 grey) are resampled once by :data:`LFW_UPSAMPLE` with a bicubic
    spline so that the later bilinear warps do not show their pixel grid. Grey images
    come back with three equal channels; :func:`render_face` colours them with the
    actor's skin tone (:attr:`FaceStyle.skin`). Alpha separates the person from the
    backdrop of the astronaut's portrait; LFW crops are all face (alpha 1).

    Returns
    -------
    ndarray, shape (h, w, 4), float32
    """
    from skimage import data
    from skimage.filters import gaussian
    from skimage.transform import resize

    source = _source(name)
    top, bottom, left, right = source.crop
    if name == "astronaut":
        rgb = data.astronaut()[top:bottom, left:right].astype(np.float32) / 255.0
        key = _person_key(rgb)
    else:
        grey = data.lfw_subset()[int(name.split("-")[1])].astype(np.float32)
        grey = gaussian(grey, sigma=LFW_BLUR, mode="nearest")
        grey = resize(grey, (LFW_SIZE * LFW_UPSAMPLE,) * 2, order=3, mode="edge", anti_aliasing=False)
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
        key = np.ones(rgb.shape[:2], dtype=np.float32)
    image = np.concatenate([rgb, key[..., None]], axis=2).astype(np.float32)
    image.setflags(write=False)
    return image


def _person_key(rgb: np.ndarray) -> np.ndarray:
    """Alpha of a person before a plain, pale, unsaturated backdrop (the astronaut's portrait).

    Skin and hair are saturated, the suit is dark; holes (eyes, teeth) are filled and the
    edge is softened by a pixel or two.
    """
    from scipy import ndimage
    from skimage.filters import gaussian

    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    person = (chroma > 0.12) | (rgb.max(axis=2) < 0.42)
    person = ndimage.binary_fill_holes(ndimage.binary_opening(person, iterations=2))
    return gaussian(person.astype(np.float32), sigma=1.5).astype(np.float32)


def _source(name: str) -> FaceSource:
    try:
        return FACE_SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown face source {name!r}; known: {', '.join(FACE_SOURCES)}") from None


def source_frame(name: str) -> tuple[np.ndarray, float, np.ndarray]:
    """The face frame of a source in the pixels of :func:`source_image`.

    Returns
    -------
    mid : ndarray, shape (2,)
        The point between the eyes, (x, y).
    iod : float
        Inter-ocular distance in pixels.
    axes : ndarray, shape (2, 2)
        Rows: the unit x axis (from the left to the right eye) and the unit y axis.
    """
    source = _source(name)
    scale = LFW_UPSAMPLE if name.startswith("lfw-") else 1.0
    top, _, left, _ = source.crop
    # landmarks are continuous coordinates (pixel i spans [i, i + 1)), so a resize scales them
    points = (np.asarray(source.landmarks, dtype=np.float64) - (left, top)) * scale
    eye_l, eye_r = points[0], points[1]
    mid = (eye_l + eye_r) / 2.0
    iod = float(np.hypot(*(eye_r - eye_l)))
    x_axis = (eye_r - eye_l) / iod
    y_axis = np.array([-x_axis[1], x_axis[0]])
    return mid, iod, np.stack([x_axis, y_axis])


def landmarks_normalised(name: str) -> dict[str, np.ndarray]:
    """The landmarks of a source in normalised face coordinates (eyes near (-0.5, 0), (0.5, 0))."""
    source = _source(name)
    mid, iod, axes = source_frame(name)
    scale = LFW_UPSAMPLE if name.startswith("lfw-") else 1.0
    top, _, left, _ = source.crop
    points = (np.asarray(source.landmarks, dtype=np.float64) - (left, top)) * scale
    normalised = (points - mid) @ axes.T / iod
    return dict(zip(LANDMARK_NAMES, normalised))


# ---------------------------------------------------------------------------- expression

# control points: name -> (anchor landmark, offset from it in IOD units, RBF width in IOD)
CONTROL_POINTS: dict[str, tuple[str, tuple[float, float], float]] = {
    "brow_in_l": ("eye_l", (0.17, -0.36), 0.13),
    "brow_in_r": ("eye_r", (-0.17, -0.36), 0.13),
    "brow_mid_l": ("eye_l", (0.0, -0.40), 0.13),
    "brow_mid_r": ("eye_r", (0.0, -0.40), 0.13),
    "brow_out_l": ("eye_l", (-0.24, -0.32), 0.13),
    "brow_out_r": ("eye_r", (0.24, -0.32), 0.13),
    "lid_up_l": ("eye_l", (0.0, -0.07), 0.08),
    "lid_up_r": ("eye_r", (0.0, -0.07), 0.08),
    "lid_lo_l": ("eye_l", (0.0, 0.08), 0.07),
    "lid_lo_r": ("eye_r", (0.0, 0.08), 0.07),
    "cheek_l": ("eye_l", (-0.05, 0.50), 0.20),
    "cheek_r": ("eye_r", (0.05, 0.50), 0.20),
    "nose_l": ("mouth_c", (-0.20, -0.42), 0.10),
    "nose_r": ("mouth_c", (0.20, -0.42), 0.10),
    "corner_l": ("mouth_l", (0.0, 0.0), 0.13),
    "corner_r": ("mouth_r", (0.0, 0.0), 0.13),
    "lip_up": ("mouth_c", (0.0, -0.07), 0.11),
    "lip_lo": ("mouth_c", (0.0, 0.10), 0.15),
    "chin": ("chin", (0.0, 0.0), 0.35),
}

# action unit -> moves of control points at activation 1, in IOD units. For paired points
# (suffix _l/_r) the x move is "outwards" (away from the midline) and mirrored per side.
ACTION_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "inner_brow_raise": {"brow_in": (-0.03, -0.15), "brow_mid": (0.0, -0.08)},
    "outer_brow_raise": {"brow_out": (0.0, -0.15), "brow_mid": (0.0, -0.09)},
    "brow_lower": {"brow_in": (-0.07, 0.12), "brow_mid": (-0.03, 0.09), "brow_out": (0.0, 0.05)},
    "lid_raise": {"lid_up": (0.0, -0.07)},
    "lid_tighten": {"lid_up": (0.0, 0.035), "lid_lo": (0.0, -0.045)},
    "cheek_raise": {"cheek": (0.0, -0.09), "lid_lo": (0.0, -0.035)},
    "lip_corner_pull": {"corner": (0.09, -0.12)},
    "lip_corner_depress": {"corner": (-0.01, 0.12)},
    "lip_stretch": {"corner": (0.13, 0.02)},
    "lip_press": {"corner": (-0.07, 0.0), "lip_up": (0.0, 0.035), "lip_lo": (0.0, -0.045)},
    "upper_lip_raise": {"lip_up": (0.0, -0.09), "nose": (0.0, -0.06)},
    "chin_raise": {"chin": (0.0, -0.08), "lip_lo": (0.0, -0.045)},
}
# moves of a mouth opened by 1 IOD (scaled by the opening)
JAW_OPEN: dict[str, tuple[float, float]] = {
    "lip_up": (0.0, -0.10),
    "lip_lo": (0.0, 0.90),
    "chin": (0.0, JAW_DROP),
    "corner": (-0.05, 0.32),
}

UNIT_NAMES = tuple(ACTION_UNITS)
MAX_MOVE_PER_WIDTH = 1.3  # largest move of a control point, in RBF widths (folds start near 1.6)
# (upper, lower, smallest gap in IOD units) of points that must not cross
MIN_GAPS = (("lid_up_l", "lid_lo_l", 0.08), ("lid_up_r", "lid_lo_r", 0.08), ("lip_up", "lip_lo", 0.11))


@dataclass(frozen=True)
class FaceExpression:
    """What the face shows in one clip.

    Attributes
    ----------
    units : mapping of str to float
        Activation of each action unit in :data:`ACTION_UNITS` (0: none, 1: the prototype;
        strong expressions go beyond 1).
    mouth_open : float
        Opening of the mouth at rest, IOD units (the jaw of surprise), before speech.
    teeth : float
        Share of the open mouth's height that shows upper teeth, 0-1.
    """

    units: Mapping[str, float] = field(default_factory=dict)
    mouth_open: float = 0.0
    teeth: float = 0.0


# emotion -> (action units, mouth opening at rest, teeth)
EMOTION_UNITS: dict[str, tuple[dict[str, float], float, float]] = {
    "neutral": ({}, 0.0, 0.0),
    "calm": ({"lid_tighten": 0.25, "lip_corner_pull": 0.1}, 0.0, 0.0),
    "happy": ({"lip_corner_pull": 1.0, "cheek_raise": 1.0, "lid_tighten": 0.3}, 0.08, 0.6),
    "sad": (
        {"inner_brow_raise": 1.0, "brow_lower": 0.45, "lip_corner_depress": 1.0, "chin_raise": 0.8, "lid_tighten": 0.3},
        0.0,
        0.0,
    ),
    "angry": (
        {"brow_lower": 1.0, "lid_tighten": 0.8, "lip_press": 0.8, "upper_lip_raise": 0.3, "chin_raise": 0.4},
        0.0,
        0.0,
    ),
    "disgust": (
        {
            "brow_lower": 0.9,
            "lid_tighten": 0.8,
            "upper_lip_raise": 0.8,
            "lip_press": 0.3,
            "lip_corner_depress": 0.35,
            "chin_raise": 0.3,
        },
        0.02,
        0.3,
    ),
    "fearful": (
        {"inner_brow_raise": 1.0, "outer_brow_raise": 0.8, "brow_lower": 0.2, "lid_raise": 1.0, "lip_stretch": 0.6},
        0.18,
        0.2,
    ),
    "surprised": ({"inner_brow_raise": 1.0, "outer_brow_raise": 1.0, "lid_raise": 1.0}, 0.26, 0.0),
}


def emotion_expression(emotion: str, *, strength: float = 1.0) -> FaceExpression:
    """The prototype expression of an emotion, scaled by ``strength``.

    Parameters
    ----------
    emotion : str
        One of the eight RAVDESS emotion names.
    strength : float
        1 for the prototype; 0 gives a neutral face.
    """
    if emotion not in EMOTION_UNITS:
        raise ConfigError(f"unknown emotion {emotion!r}; expected one of {list(EMOTION_UNITS)}")
    units, mouth_open, teeth = EMOTION_UNITS[emotion]
    return FaceExpression({k: v * strength for k, v in units.items()}, mouth_open * strength, teeth)


def mix_expressions(*weighted: tuple[FaceExpression, float]) -> FaceExpression:
    """A weighted sum of expressions (activations and mouth opening add; teeth: the maximum)."""
    units: dict[str, float] = {}
    mouth_open = 0.0
    teeth = 0.0
    for expression, weight in weighted:
        for name, value in expression.units.items():
            units[name] = units.get(name, 0.0) + weight * value
        mouth_open += weight * expression.mouth_open
        if weight > 0.2:
            teeth = max(teeth, expression.teeth)
    return FaceExpression(units, max(mouth_open, 0.0), teeth)


def control_moves(
    landmarks: Mapping[str, np.ndarray], expression: FaceExpression, *, mouth_open: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each control point is and how far the expression moves it.

    Parameters
    ----------
    landmarks : mapping
        Normalised landmarks (:func:`landmarks_normalised`).
    expression : FaceExpression
    mouth_open : float
        Extra opening (speech), IOD units, added to the expression's own.

    Returns
    -------
    points, moves : ndarray, shape (n, 2)
        Control points at rest and their displacements, normalised face coordinates.
    widths : ndarray, shape (n,)
        RBF widths.
    """
    unknown = sorted(set(expression.units) - set(ACTION_UNITS))
    if unknown:
        raise ConfigError(f"unknown action units {unknown}; known: {list(ACTION_UNITS)}")
    names = list(CONTROL_POINTS)
    points = np.array([landmarks[anchor] + np.asarray(offset) for anchor, offset, _ in CONTROL_POINTS.values()])
    widths = np.array([width for _, _, width in CONTROL_POINTS.values()])
    moves = np.zeros_like(points)

    def add(base: str, vector: tuple[float, float], weight: float) -> None:
        if base in CONTROL_POINTS:
            moves[names.index(base)] += weight * np.asarray(vector)
            return
        for side, sign in (("_l", -1.0), ("_r", 1.0)):
            moves[names.index(base + side)] += weight * np.array([sign * vector[0], vector[1]])

    for unit, activation in expression.units.items():
        for base, vector in ACTION_UNITS[unit].items():
            add(base, vector, activation)
    opening = min(max(expression.mouth_open + mouth_open, 0.0), MAX_OPENING)
    for base, vector in JAW_OPEN.items():
        add(base, vector, opening)
    # a move much larger than its width folds the image over itself: cap it
    length = np.hypot(moves[:, 0], moves[:, 1])
    limit = MAX_MOVE_PER_WIDTH * widths
    moves *= np.minimum(1.0, limit / np.maximum(length, 1e-9))[:, None]
    # lids and lips never close past each other (the warp would fold over)
    for upper, lower, min_gap in MIN_GAPS:
        up, low = names.index(upper), names.index(lower)
        gap = (points[low, 1] + moves[low, 1]) - (points[up, 1] + moves[up, 1])
        rest_gap = points[low, 1] - points[up, 1]
        if gap < min_gap:
            keep = (rest_gap - min_gap) / (rest_gap - gap)
            moves[up, 1] *= keep if moves[up, 1] > 0 else 1.0
            moves[low, 1] *= keep if moves[low, 1] < 0 else 1.0
    return points, moves, widths


@dataclass(frozen=True)
class WarpField:
    """A fitted backward displacement field (see :func:`fit_warp`)."""

    centres: np.ndarray
    weights: np.ndarray
    widths: np.ndarray

    def __call__(self, grid_x: np.ndarray, grid_y: np.ndarray) -> np.ndarray:
        """The field at (grid_x, grid_y): shape grid_x.shape + (2,), float32."""
        shape = np.shape(grid_x)
        used = np.abs(self.weights).max(axis=1) > 1e-7
        if not used.any():
            return np.zeros(shape + (2,), dtype=np.float32)
        centres = self.centres[used].astype(np.float32)
        scale = (-0.5 / self.widths[used] ** 2).astype(np.float32)
        weights = self.weights[used].astype(np.float32)
        xs = np.asarray(grid_x, dtype=np.float32).reshape(-1, 1)
        ys = np.asarray(grid_y, dtype=np.float32).reshape(-1, 1)
        out = np.empty((len(xs), 2), dtype=np.float32)
        for start in range(0, len(xs), 8192):  # bounded memory: 8192 points x n centres at a time
            part = slice(start, start + 8192)
            kernel = np.exp(((xs[part] - centres[:, 0]) ** 2 + (ys[part] - centres[:, 1]) ** 2) * scale)
            out[part] = kernel @ weights
        return out.reshape(shape + (2,))


def fit_warp(points: np.ndarray, moves: np.ndarray, widths: np.ndarray) -> WarpField:
    """Fit the backward displacement of a warp that moves ``points`` by ``moves``.

    Gaussian radial basis functions centred on the *moved* points are fitted so that the
    field equals the move there exactly: the output pixel at ``point + move`` samples the
    source at ``point``. Points that do not move anchor the field, so nearby moves do not
    drag them; between the points the field is smooth and it dies away beyond a few widths.

    Parameters
    ----------
    points, moves : ndarray, shape (n, 2)
        Control points and their displacements, normalised face coordinates.
    widths : ndarray, shape (n,)
        RBF widths.

    Returns
    -------
    WarpField
        Call it on coordinates; subtract the result from output coordinates to get source
        coordinates.
    """
    centres = points + moves
    if not np.abs(moves).any():
        return WarpField(centres, np.zeros_like(moves), widths)
    diff = centres[:, None, :] - centres[None, :, :]
    kernel = np.exp(-(diff**2).sum(-1) / (2.0 * widths[None, :] ** 2))
    weights = np.linalg.solve(kernel + 1e-3 * np.eye(len(centres)), moves)
    return WarpField(centres, weights, widths)


def displacement_field(
    points: np.ndarray, moves: np.ndarray, widths: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray
) -> np.ndarray:
    """The backward displacement of :func:`fit_warp` evaluated at (grid_x, grid_y).

    Returns
    -------
    ndarray, shape grid_x.shape + (2,), float32
    """
    return fit_warp(points, moves, widths)(grid_x, grid_y)


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample ``image`` at fractional pixel positions (bilinear, edges clamped).

    Parameters
    ----------
    image : ndarray, shape (h, w) or (h, w, c)
    rows, cols : ndarray
        Positions in array indices (pixel centres at integers); same shape.

    Returns
    -------
    ndarray, shape rows.shape (+ (c,)), float32
    """
    height, width = image.shape[:2]
    flat = image.reshape(height * width, -1).astype(np.float32, copy=False)
    rows = np.clip(rows, 0.0, height - 1.001)
    cols = np.clip(cols, 0.0, width - 1.001)
    r0 = rows.astype(np.int32)
    c0 = cols.astype(np.int32)
    fr = (rows - r0).astype(np.float32)[..., None]
    fc = (cols - c0).astype(np.float32)[..., None]
    index = r0 * width + c0
    top_left, top_right = flat[index], flat[index + 1]
    bottom_left, bottom_right = flat[index + width], flat[index + width + 1]
    top = top_left + (top_right - top_left) * fc
    bottom = bottom_left + (bottom_right - bottom_left) * fc
    out = top + (bottom - top) * fr
    return out[..., 0] if image.ndim == 2 else out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ellipse_alpha(
    x: np.ndarray, y: np.ndarray, ellipse: tuple[float, float, float, float], feather: float, *, taper: float = 0.0
) -> np.ndarray:
    """1 inside the ellipse (cx, cy, half-width, half-height), fading to 0 over ``feather`` (same units).

    ``taper`` > 0 narrows the lower half (an egg, for the outline of a head).
    """
    cx, cy, half_w, half_h = ellipse
    if taper:
        # narrower towards the chin, like a head
        half_w = half_w * (1.0 - taper * _smoothstep((y - cy) / half_h * 0.5 + 0.5))
    radius = np.sqrt(((x - cx) / half_w) ** 2 + ((y - cy) / half_h) ** 2)
    return _smoothstep((1.0 - radius) * np.minimum(half_w, half_h) / feather + 0.5)


# ------------------------------------------------------------------------------- patches

FIELD_STEP = 0.02  # IOD units between samples of the displacement field
MOUTH_INTERIOR_RGB = np.array([0.20, 0.07, 0.07], dtype=np.float32)
TEETH_RGB = np.array([0.88, 0.86, 0.80], dtype=np.float32)


@dataclass(frozen=True)
class FaceStyle:
    """How one actor's face looks, whatever the emotion.

    Attributes
    ----------
    source : str
        Face source name (:data:`FACE_SOURCES`).
    skin : tuple of float
        RGB multiplier of grey photographs (skin tone); colour photographs ignore it.
    hair : tuple of float
        RGB of the drawn hair (LFW faces only).
    contrast, brightness : float
        Applied to the photograph: ``(x - 0.5) * contrast + 0.5 + brightness``.
    """

    source: str
    skin: tuple[float, float, float] = (1.0, 0.84, 0.72)
    hair: tuple[float, float, float] = (0.12, 0.09, 0.07)
    contrast: float = 1.0
    brightness: float = 0.0


@dataclass
class FacePatch:
    """A rendered face: premultiplied RGBA and where the point between the eyes is.

    Attributes
    ----------
    rgba : ndarray, shape (h, w, 4), float32
        Colour premultiplied by alpha, and alpha; h and w are even.
    anchor : tuple of float
        (x, y) of the point between the eyes inside the patch, pixels.
    """

    rgba: np.ndarray
    anchor: tuple[float, float]


def patch_grid(
    *, iod_px: float, roll_deg: float = 0.0, extent: tuple[float, float, float, float] = (-1.8, 1.8, -2.0, 2.5)
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Normalised face coordinates of every pixel of a face patch.

    Parameters
    ----------
    iod_px : float
        Inter-ocular distance in output pixels (sets the patch size).
    roll_deg : float
        Head roll (positive: clockwise on screen).
    extent : tuple of float
        x0, x1, y0, y1 of the patch before the roll, normalised coordinates
        (:attr:`FaceSource.extent` holds a whole head).

    Returns
    -------
    x, y : ndarray, shape (h, w), float32
        Normalised coordinates of pixel centres (h, w even).
    anchor : tuple of float
        (x, y) of the normalised origin in patch pixels.
    """
    if iod_px <= 2:
        raise ConfigError(f"iod_px must be more than 2 pixels, not {iod_px}")
    x0, x1, y0, y1 = extent
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) * iod_px
    angle = np.deg2rad(roll_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = corners @ rotation.T
    low = np.floor(turned.min(axis=0))
    high = np.ceil(turned.max(axis=0))
    width = int(high[0] - low[0]) + 2
    height = int(high[1] - low[1]) + 2
    width += width % 2
    height += height % 2
    anchor = (-low[0] + 1.0, -low[1] + 1.0)
    cols, rows = np.meshgrid(
        np.arange(width, dtype=np.float32) + 0.5 - anchor[0], np.arange(height, dtype=np.float32) + 0.5 - anchor[1]
    )
    # screen -> face: undo the roll
    x = (rotation[0, 0] * cols + rotation[1, 0] * rows) / iod_px
    y = (rotation[0, 1] * cols + rotation[1, 1] * rows) / iod_px
    return x.astype(np.float32), y.astype(np.float32), anchor


def _field_on_grid(warp: WarpField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The displacement field at (x, y), computed on a coarse grid and interpolated."""
    if not np.abs(warp.weights).any():
        return np.zeros(x.shape + (2,), dtype=np.float32)
    pad = 0.2
    # only the region around the control points moves; elsewhere the field is ~0
    reach = 4.0 * warp.widths.max()
    low = np.maximum(warp.centres.min(axis=0) - reach, [x.min() - pad, y.min() - pad])
    high = np.minimum(warp.centres.max(axis=0) + reach, [x.max() + pad, y.max() + pad])
    if np.any(high <= low):
        return np.zeros(x.shape + (2,), dtype=np.float32)
    grid_cols = np.arange(low[0], high[0] + FIELD_STEP, FIELD_STEP, dtype=np.float32)
    grid_rows = np.arange(low[1], high[1] + FIELD_STEP, FIELD_STEP, dtype=np.float32)
    gx, gy = np.meshgrid(grid_cols, grid_rows)
    # zero border so that sampling outside the box gives no displacement
    coarse = np.pad(warp(gx, gy), ((1, 1), (1, 1), (0, 0)))
    rows = (y - grid_rows[0]) / FIELD_STEP + 1.0
    cols = (x - grid_cols[0]) / FIELD_STEP + 1.0
    return bilinear(coarse, rows, cols)


def render_face(
    style: FaceStyle,
    expression: FaceExpression,
    *,
    iod_px: float,
    roll_deg: float = 0.0,
    mouth_open: float = 0.0,
    grid: tuple[np.ndarray, np.ndarray, tuple[float, float]] | None = None,
) -> FacePatch:
    """Render one face with an expression, as a premultiplied RGBA patch.

    Parameters
    ----------
    style : FaceStyle
        The actor's face.
    expression : FaceExpression
        Action units, resting mouth opening and teeth.
    iod_px : float
        Inter-ocular distance in output pixels.
    roll_deg : float
        Head roll.
    mouth_open : float
        Extra mouth opening from speech, IOD units.
    grid : tuple, optional
        The result of :func:`patch_grid` for the same ``iod_px`` and ``roll_deg``
        (computed when not given; pass it to render many mouth levels cheaply).

    Returns
    -------
    FacePatch
    """
    x, y, anchor = (
        grid if grid is not None else patch_grid(iod_px=iod_px, roll_deg=roll_deg, extent=_source(style.source).extent)
    )
    return _render(style, expression, x, y, anchor, iod_px=iod_px, roll_deg=roll_deg, mouth_open=mouth_open)


def _to_pixels(anchor: tuple[float, float], iod_px: float, roll_deg: float) -> np.ndarray:
    """The 2x3 affine map from normalised face coordinates to patch (column, row)."""
    angle = np.deg2rad(roll_deg)
    return np.array(
        [
            [iod_px * np.cos(angle), -iod_px * np.sin(angle), anchor[0] - 0.5],
            [iod_px * np.sin(angle), iod_px * np.cos(angle), anchor[1] - 0.5],
        ]
    )


def _render(
    style: FaceStyle,
    expression: FaceExpression,
    x: np.ndarray,
    y: np.ndarray,
    anchor: tuple[float, float],
    *,
    iod_px: float,
    roll_deg: float,
    mouth_open: float,
    shading: tuple[np.ndarray, np.ndarray] | None = None,
) -> FacePatch:
    """Render the face on the grid (x, y); ``shading`` (dark, light) as from :func:`wrinkle_shading`."""
    source = _source(style.source)
    landmarks = landmarks_normalised(style.source)
    points, moves, widths = control_moves(landmarks, expression, mouth_open=mouth_open)
    warp = fit_warp(points, moves, widths)
    field = _field_on_grid(warp, x, y)
    src_x = x - field[..., 0]
    src_y = y - field[..., 1]

    image = source_image(style.source)
    mid, iod, axes = source_frame(style.source)
    px = mid[0] + iod * (src_x * axes[0, 0] + src_y * axes[1, 0])
    py = mid[1] + iod * (src_x * axes[0, 1] + src_y * axes[1, 1])
    sampled = bilinear(image, py - 0.5, px - 0.5)
    rgb = (sampled[..., :3] - 0.5) * style.contrast + 0.5 + style.brightness
    if source.name != "astronaut":
        rgb = rgb * np.asarray(style.skin, dtype=np.float32)
    feather = 2.0 / iod_px  # two output pixels
    alpha = sampled[..., 3] * _ellipse_alpha(
        src_x, src_y, source.head, max(feather, 0.06), taper=0.3 if source.hair else 0.0
    )
    if source.hair:
        height, width = image.shape[:2]
        edge = 1.5 * LFW_UPSAMPLE
        inside = np.minimum.reduce([px, width - px, py, height - py]) / edge
        alpha = alpha * _smoothstep(inside)
    if shading is None:
        shading = wrinkle_shading(
            landmarks, expression, x, y, feather=feather, to_pixels=_to_pixels(anchor, iod_px, roll_deg)
        )
    _apply_shading(rgb, shading)
    opening = min(max(expression.mouth_open + mouth_open, 0.0), MAX_OPENING)
    if opening > 0.004:
        names = list(CONTROL_POINTS)
        corners = (points + moves)[names.index("corner_l")], (points + moves)[names.index("corner_r")]
        centre = _mouth_line_centre(warp, landmarks["mouth_c"])
        _paint_mouth(rgb, x, y, centre, corners, opening, expression.teeth, feather)
    alpha = alpha[..., None]
    colour = rgb * alpha
    if source.hair:
        hair_alpha = _ellipse_alpha(x, y, HAIR_ELLIPSE, max(feather, 0.08))[..., None] * (1.0 - alpha)
        colour = colour + np.asarray(style.hair, dtype=np.float32) * hair_alpha
        alpha = alpha + hair_alpha
    rgba = np.concatenate([np.clip(colour, 0.0, 1.0), alpha], axis=2).astype(np.float32)
    return FacePatch(rgba, anchor)


# Skin folds and shading that action units make (FACS appearance changes), drawn on top of
# the warp so that an expression still shows in a 64 px crop of a blurry face:
# unit -> [(kind, anchor landmark, points relative to it, width, amount)]; "line" darkens
# along a polyline, "spot" darkens and "light" brightens an ellipse given as
# (centre, half-axes). Points are for the image-left side and mirrored to the right
# unless the anchor is a midline landmark (mouth_c, chin).
WRINKLES: dict[str, list[tuple[str, str, tuple[tuple[float, float], ...], float, float]]] = {
    "brow_lower": [
        ("line", "eye_l", ((0.43, -0.44), (0.45, -0.18)), 0.045, 0.42),  # vertical furrows
        ("spot", "eye_l", ((0.05, -0.30), (0.26, 0.07)), 0.0, 0.26),  # heavy, lowered brows
    ],
    "inner_brow_raise": [
        ("line", "mouth_c", ((-0.32, -1.78), (0.0, -1.82), (0.32, -1.78)), 0.036, 0.26),
        ("line", "mouth_c", ((-0.25, -1.93), (0.0, -1.96), (0.25, -1.93)), 0.036, 0.22),
    ],
    "outer_brow_raise": [
        ("line", "mouth_c", ((-0.62, -1.70), (-0.3, -1.78), (0.3, -1.78), (0.62, -1.70)), 0.036, 0.19),
    ],
    "lid_raise": [
        ("light", "eye_l", ((0.0, -0.04), (0.21, 0.07)), 0.0, 0.42),  # the whites show above the iris
        ("spot", "eye_l", ((0.0, 0.0), (0.06, 0.06)), 0.0, 0.42),  # iris
    ],
    "lid_tighten": [
        ("line", "eye_l", ((-0.2, 0.0), (0.0, 0.015), (0.2, 0.0)), 0.054, 0.34),  # narrowed slit
    ],
    "cheek_raise": [
        ("line", "eye_l", ((-0.28, 0.0), (-0.42, -0.07)), 0.025, 0.3),  # crow's feet
        ("line", "eye_l", ((-0.28, 0.04), (-0.44, 0.06)), 0.025, 0.3),
        ("line", "eye_l", ((-0.2, 0.15), (0.0, 0.19), (0.18, 0.15)), 0.036, 0.22),  # lower lid bulge
    ],
    "lip_corner_pull": [
        ("line", "mouth_l", ((0.19, -0.46), (0.01, -0.25), (-0.07, -0.02)), 0.054, 0.38),  # nasolabial folds
    ],
    "lip_corner_depress": [
        ("line", "mouth_l", ((0.02, 0.03), (-0.05, 0.32)), 0.045, 0.36),  # marionette lines
    ],
    "lip_stretch": [
        ("line", "mouth_l", ((-0.02, 0.06), (-0.16, 0.22)), 0.045, 0.3),  # neck and jaw tension
    ],
    "lip_press": [
        ("line", "mouth_c", ((-0.3, 0.0), (0.0, 0.01), (0.3, 0.0)), 0.045, 0.48),  # tight dark line
    ],
    "upper_lip_raise": [
        ("line", "mouth_c", ((-0.14, -0.78), (0.14, -0.78)), 0.036, 0.36),  # nose wrinkles
        ("line", "mouth_c", ((-0.12, -0.68), (0.12, -0.68)), 0.036, 0.36),
        ("line", "mouth_l", ((0.19, -0.44), (0.02, -0.2)), 0.054, 0.3),
    ],
    "chin_raise": [
        ("line", "mouth_c", ((-0.18, 0.36), (0.0, 0.40), (0.18, 0.36)), 0.054, 0.36),  # chin crease
    ],
}
MAX_SHADE = 0.6
FOLD_TINT = np.array([0.85, 1.0, 1.08], dtype=np.float32)
_MIDLINE = ("mouth_c", "chin")


def _segment_distance(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.hypot(x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]))


def wrinkle_shading(
    landmarks: Mapping[str, np.ndarray],
    expression: FaceExpression,
    x: np.ndarray,
    y: np.ndarray,
    *,
    feather: float,
    to_pixels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """How much each pixel is darkened (folds) and brightened (eye whites) by the expression.

    Parameters
    ----------
    landmarks : mapping
        Normalised landmarks of the face.
    expression : FaceExpression
        Active units select elements of :data:`WRINKLES`, scaled by their activation.
    x, y : ndarray
        Normalised coordinates of the patch pixels.
    feather : float
        One output pixel or two, normalised units (the thinnest line drawn).
    to_pixels : ndarray, shape (2, 3)
        Maps normalised coordinates to patch (column, row); each element is only computed
        inside its bounding box.

    Returns
    -------
    dark, light : ndarray, shape x.shape, float32
        Shares in [0, :data:`MAX_SHADE`].
    """
    dark = np.zeros(x.shape, dtype=np.float32)
    light = np.zeros(x.shape, dtype=np.float32)
    height, width_px = x.shape
    for unit, activation in expression.units.items():
        if activation <= 0.02 or unit not in WRINKLES:
            continue
        for kind, anchor, shape, width, amount in WRINKLES[unit]:
            sides = [(anchor, 1.0)] if anchor in _MIDLINE else [(anchor, 1.0), (anchor[:-1] + "r", -1.0)]
            for name, mirror in sides:
                origin = landmarks[name]
                pts = np.array([origin + np.array([mirror * px_, py_]) for px_, py_ in shape])
                reach = 3.0 * max(width, feather) if kind == "line" else 0.0
                if kind != "line":
                    half = np.asarray(shape[1])
                    corners = np.array([pts[0] - 2 * half, pts[0] + 2 * half])
                else:
                    corners = np.array([pts.min(axis=0) - reach, pts.max(axis=0) + reach])
                box = np.array([[corners[i, 0], corners[j, 1], 1.0] for i in (0, 1) for j in (0, 1)]) @ to_pixels.T
                c0, r0 = np.maximum(np.floor(box.min(axis=0)).astype(int), 0)
                c1, r1 = np.ceil(box.max(axis=0)).astype(int) + 1
                c1, r1 = min(c1, width_px), min(r1, height)
                if c0 >= c1 or r0 >= r1:
                    continue
                xs, ys = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
                if kind == "line":
                    width_here = max(width, feather)
                    distance = np.min([_segment_distance(xs, ys, a, b) for a, b in zip(pts[:-1], pts[1:])], axis=0)
                    dark[r0:r1, c0:c1] += (
                        amount * activation * (width / width_here) * np.exp(-0.5 * (distance / width_here) ** 2)
                    )
                else:
                    radius2 = ((xs - pts[0, 0]) / half[0]) ** 2 + ((ys - pts[0, 1]) / half[1]) ** 2
                    target = dark if kind == "spot" else light
                    target[r0:r1, c0:c1] += amount * activation * np.exp(-2.0 * radius2)
    return np.clip(dark, 0.0, MAX_SHADE), np.clip(light, 0.0, MAX_SHADE)


def _apply_shading(rgb: np.ndarray, shading: tuple[np.ndarray, np.ndarray]) -> None:
    dark, light = shading
    if dark.any():
        # folds are shadows in skin: a little warmer than grey
        rgb *= 1.0 - dark[..., None] * FOLD_TINT
    if light.any():
        rgb += (1.0 - rgb) * light[..., None]


def _mouth_line_centre(warp: WarpField, mouth_c: np.ndarray) -> np.ndarray:
    """Where the source's mouth centre lands in the output (inverting the backward field)."""
    out = mouth_c.astype(np.float64).copy()
    for _ in range(4):
        out = mouth_c + warp(np.array([out[0]]), np.array([out[1]]))[0]
    return out


def _paint_mouth(
    rgb: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    centre: np.ndarray,
    corners: tuple[np.ndarray, np.ndarray],
    opening: float,
    teeth: float,
    feather: float,
) -> None:
    """Paint the inside of an open mouth (dark, with upper teeth) in place.

    The inside is a lens between the moved mouth corners whose height at the middle is the
    opening: a little above the moved mouth line and mostly below it, where the jaw went.
    """
    if opening <= 0.004:
        return
    left, right = corners
    centre_x = (left[0] + right[0]) / 2.0
    half_w = max((right[0] - left[0]) / 2.0 * 0.9, 0.05)
    u = np.clip((x - centre_x) / half_w, -1.0, 1.0)
    bend = u * u
    corner_y = left[1] + (right[1] - left[1]) * (u + 1.0) / 2.0
    upper = (centre[1] - 0.15 * opening) * (1.0 - bend) + corner_y * bend
    lower = (centre[1] + 0.85 * opening) * (1.0 - bend) + corner_y * bend
    horizontal = _smoothstep((1.0 - np.abs((x - centre_x) / half_w)) * half_w / feather)
    inside = _smoothstep((y - upper) / feather) * _smoothstep((lower - y) / feather) * horizontal
    if not np.any(inside > 0):
        return
    colour = np.broadcast_to(MOUTH_INTERIOR_RGB, rgb.shape).copy()
    if teeth > 0:
        teeth_line = upper + teeth * 0.5 * (lower - upper)
        cover = _smoothstep((teeth_line - y) / feather)[..., None]
        colour = colour * (1.0 - cover) + TEETH_RGB * cover
    inside = inside[..., None]
    rgb *= 1.0 - inside
    rgb += colour * inside


# ---------------------------------------------------------------------------- YUV frames

# BT.601 limited range, RGB in [0, 1] -> Y in [16, 235], U/V in [16, 240]
_RGB_TO_YUV = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=np.float32,
)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV of RGB in [0, 1] (the conversion ffmpeg assumes untagged).

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3), float32
        Y in [16, 235], U and V in [16, 240].
    """
    return np.asarray(rgb, dtype=np.float32) @ _RGB_TO_YUV.T + _YUV_OFFSET


def _half(plane: np.ndarray) -> np.ndarray:
    """2x2 mean (the chroma subsampling of 4:2:0); height and width must be even."""
    return 0.25 * (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2])


@dataclass
class YuvPlanes:
    """A 4:2:0 image: Y (h, w) and U, V (h/2, w/2), float32 holding whole numbers."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def frame_yuv420(rgb: np.ndarray, *, gains: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> YuvPlanes:
    """An RGB image in [0, 1] as 4:2:0 planes, after per-channel colour ``gains``.

    Parameters
    ----------
    rgb : ndarray, shape (h, w, 3)
        h and w even.
    gains : tuple of float
        White balance of the (imaginary) camera.
    """
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ConfigError(f"frame size must be even for 4:2:0 video, not {width}x{height}")
    yuv = rgb_to_yuv(np.clip(rgb * np.asarray(gains, dtype=np.float32), 0.0, 1.0))
    # whole numbers: copied as they are where no face is, and blended the same way where
    # the face patch is transparent, so the patch's box never shows
    return YuvPlanes(np.rint(yuv[..., 0]), np.rint(_half(yuv[..., 1])), np.rint(_half(yuv[..., 2])))


@dataclass
class YuvPatch:
    """A face patch ready to blend into 4:2:0 frames: premultiplied planes and (1 - alpha)."""

    y: np.ndarray
    keep: np.ndarray
    uv: np.ndarray
    keep_uv: np.ndarray
    anchor: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape


def upsample2(plane: np.ndarray) -> np.ndarray:
    """Double the size of a 2-D array (bilinear, pixel centres kept aligned, edges clamped)."""

    def along_rows(a: np.ndarray) -> np.ndarray:
        before = np.concatenate([a[:1], a[:-1]], axis=0)
        after = np.concatenate([a[1:], a[-1:]], axis=0)
        out = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=np.float32)
        out[0::2] = 0.75 * a + 0.25 * before
        out[1::2] = 0.75 * a + 0.25 * after
        return out

    return along_rows(along_rows(plane).T).T


def patch_yuv420(
    patch: FacePatch, *, gains: tuple[float, float, float] = (1.0, 1.0, 1.0), half_resolution: bool = False
) -> YuvPatch:
    """Convert a premultiplied RGBA face patch for :func:`composite_yuv420`.

    Parameters
    ----------
    patch : FacePatch
    gains : tuple of float
        White balance.
    half_resolution : bool
        The patch was rendered at half the output resolution: its chroma is used as it is
        and its luma and alpha are upsampled 2x (four times less warping work).
    """
    colour = patch.rgba[..., :3] * np.asarray(gains, dtype=np.float32)
    alpha = patch.rgba[..., 3]
    # premultiplied RGB -> premultiplied YUV: the offsets scale with alpha too
    yuv = colour @ _RGB_TO_YUV.T + alpha[..., None] * _YUV_OFFSET
    if half_resolution:
        alpha_full = np.clip(upsample2(alpha), 0.0, 1.0)
        luma = upsample2(yuv[..., 0])
        anchor = (2.0 * patch.anchor[0], 2.0 * patch.anchor[1])
        return YuvPatch(luma, 1.0 - alpha_full, yuv[..., 1:].copy(), (1.0 - alpha)[..., None], anchor)
    alpha_half = _half(alpha)
    uv = np.stack([_half(yuv[..., 1]), _half(yuv[..., 2])], axis=-1)
    return YuvPatch(yuv[..., 0].copy(), 1.0 - alpha, uv, (1.0 - alpha_half)[..., None], patch.anchor)


HALF_RESOLUTION_IOD = 44.0  # px: above this, faces are rendered at half resolution
JAW_ROWS_FROM = 0.45  # normalised y below which mouth openings change nothing


def face_levels_yuv420(
    style: FaceStyle,
    expression: FaceExpression,
    *,
    iod_px: float,
    roll_deg: float,
    openings: np.ndarray,
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> list[YuvPatch]:
    """The face of one clip at several mouth openings, ready for :func:`composite_yuv420`.

    Parameters
    ----------
    style, expression
        The actor's face and the clip's expression.
    iod_px : float
        Inter-ocular distance in output pixels.
    roll_deg : float
        Head roll.
    openings : array_like
        Mouth openings from speech (IOD units), one patch each.
    gains : tuple of float
        White balance.

    Returns
    -------
    list of YuvPatch
        All of the same shape and anchor.
    """
    half = iod_px >= HALF_RESOLUTION_IOD
    render_iod = iod_px / 2.0 if half else iod_px
    x, y, anchor = patch_grid(iod_px=render_iod, roll_deg=roll_deg, extent=_source(style.source).extent)
    feather = 2.0 / render_iod
    landmarks = landmarks_normalised(style.source)
    shading = wrinkle_shading(
        landmarks, expression, x, y, feather=feather, to_pixels=_to_pixels(anchor, render_iod, roll_deg)
    )
    # the mouth moves nothing above the nose: other openings only re-render the rows below
    split = int(np.argmax(y.max(axis=1) >= JAW_ROWS_FROM)) if (y.max(axis=1) >= JAW_ROWS_FROM).any() else len(y)
    split -= split % 2
    patches = []
    base: FacePatch | None = None
    for opening in np.asarray(openings, dtype=np.float64):
        options = {"iod_px": render_iod, "roll_deg": roll_deg, "mouth_open": float(opening)}
        if base is None:
            patch = base = _render(style, expression, x, y, anchor, shading=shading, **options)
        else:
            lower = _render(
                style,
                expression,
                x[split:],
                y[split:],
                (anchor[0], anchor[1] - split),
                shading=(shading[0][split:], shading[1][split:]),
                **options,
            )
            patch = FacePatch(np.concatenate([base.rgba[:split], lower.rgba], axis=0), anchor)
        patches.append(patch_yuv420(patch, gains=gains, half_resolution=half))
    return patches


def composite_yuv420(
    background: YuvPlanes, patch: YuvPatch, *, left: int, top: int, out: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Write one frame: ``background`` with ``patch`` blended in at (left, top).

    Parameters
    ----------
    background : YuvPlanes
        The static part of the frame.
    patch : YuvPatch
    left, top : int
        Frame position of the patch's top-left pixel; rounded down to even numbers so the
        chroma planes line up. Parts outside the frame are cut off.
    out : tuple of ndarray
        uint8 Y (h, w), U and V (h/2, w/2) planes, written in place (views of one buffer
        that is then piped to the encoder).
    """
    out_y, out_u, out_v = out
    height, width = out_y.shape
    left -= left % 2
    top -= top % 2
    np.copyto(out_y, background.y, casting="unsafe")
    np.copyto(out_u, background.u, casting="unsafe")
    np.copyto(out_v, background.v, casting="unsafe")
    ph, pw = patch.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + ph, height), min(left + pw, width)
    if r0 >= r1 or c0 >= c1:
        return
    pr0, pc0 = r0 - top, c0 - left
    rows, cols = slice(r0, r1), slice(c0, c1)
    prow, pcol = slice(pr0, pr0 + r1 - r0), slice(pc0, pc0 + c1 - c0)
    blended = background.y[rows, cols] * patch.keep[prow, pcol] + patch.y[prow, pcol]
    out_y[rows, cols] = np.clip(blended + 0.5, 0, 255)
    rows2, cols2 = slice(r0 // 2, r1 // 2), slice(c0 // 2, c1 // 2)
    prow2, pcol2 = slice(pr0 // 2, pr0 // 2 + (r1 - r0) // 2), slice(pc0 // 2, pc0 // 2 + (c1 - c0) // 2)
    keep = patch.keep_uv[prow2, pcol2, 0]
    out_u[rows2, cols2] = np.clip(background.u[rows2, cols2] * keep + patch.uv[prow2, pcol2, 0] + 0.5, 0, 255)
    out_v[rows2, cols2] = np.clip(background.v[rows2, cols2] * keep + patch.uv[prow2, pcol2, 1] + 0.5, 0, 255)


@dataclass(frozen=True)
class SceneStyle:
    """The wall and the body around an actor's face.

    Attributes
    ----------
    wall : tuple of float
        RGB of the wall (light: RAVDESS actors stand before a white wall).
    shirt : tuple of float
        RGB of the shirt (dark).
    neck : tuple of float
        RGB of the neck.
    light : tuple of float
        Horizontal and vertical brightness slope of the wall across the frame.
    """

    wall: tuple[float, float, float] = (0.93, 0.93, 0.91)
    shirt: tuple[float, float, float] = (0.08, 0.08, 0.09)
    neck: tuple[float, float, float] = (0.75, 0.62, 0.53)
    light: tuple[float, float] = (0.03, -0.04)


def render_background(
    scene: SceneStyle, *, width: int, height: int, eyes: tuple[float, float], iod_px: float
) -> np.ndarray:
    """The static part of a frame: lit wall, neck and shoulders, RGB in [0, 1].

    Parameters
    ----------
    scene : SceneStyle
    width, height : int
        Frame size.
    eyes : tuple of float
        Frame position (x, y) of the point between the eyes at rest.
    iod_px : float
        Inter-ocular distance in pixels (sets the body's size).

    Returns
    -------
    ndarray, shape (height, width, 3), float32
    """
    cols = (np.arange(width, dtype=np.float32) + 0.5 - eyes[0]) / iod_px
    rows = (np.arange(height, dtype=np.float32) + 0.5 - eyes[1]) / iod_px
    x = cols[None, :]
    y = rows[:, None]
    shade = (
        1.0
        + scene.light[0] * (np.arange(width, dtype=np.float32)[None, :] / width - 0.5) * 2
        + scene.light[1] * (np.arange(height, dtype=np.float32)[:, None] / height - 0.5) * 2
    )
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = np.asarray(scene.wall, dtype=np.float32)
    image *= shade[..., None]
    feather = 1.5 / iod_px
    neck = _smoothstep((0.68 - np.abs(x)) / feather + 0.5) * _smoothstep((y - 1.0) / feather)
    neck = np.broadcast_to(neck, (height, width))[..., None]
    image = image * (1.0 - neck) + np.asarray(scene.neck, dtype=np.float32) * neck
    # shoulders: a collar line that falls towards the arms
    shoulder_top = 2.05 + 0.12 * np.abs(x) + 0.25 * (x / 2.0) ** 2
    body = _smoothstep((y - shoulder_top) / feather + 0.5) * _smoothstep(
        (2.6 + 0.45 * np.clip(y - 2.1, 0, None) - np.abs(x)) / feather + 0.5
    )
    body = body[..., None]
    image = image * (1.0 - body) + np.asarray(scene.shirt, dtype=np.float32) * body
    return np.clip(image, 0.0, 1.0)
