"""The sample corpus: actors, the clip plan, one performance per clip, .mp4 files.

Layout and names follow RAVDESS: ``OUT/Actor_XX/01-01-EE-II-SS-RR-XX.mp4`` (audio-video,
speech), H.264 yuv420p at 29.97 fps with 48 kHz AAC audio, 3-5 s per clip with 0.3-1 s of
low room noise before and after the speech.

Everything random comes from numpy generators seeded by ``(seed, what, ...)``: the actor
design from ``(seed, actor)``, each clip from ``(seed, clip fields)``. A clip therefore
does not depend on which other clips are made, in which order or by how many workers, and
the same seed gives byte-identical files (x264 and the AAC encoder run single-threaded
with bit-exact flags).

How a clip is performed (:func:`perform`)
-----------------------------------------
The clip's emotion drives both channels (:mod:`mmer.synth.face`, :mod:`mmer.synth.voice`)
with a strength set by the intensity (strong = x1.6) and the actor's expressivity, then
varied per clip and per channel *independently*: a log-normal strength, a share (up to
30 %) of another random emotion mixed in, noise on every action unit and voice
parameter, and in 12 % of clips a face and in another 12 % a voice that barely shows
the emotion (never both). Each channel alone confuses some pairs that the other
separates (see the module docstrings of ``face`` and ``voice``), and when one channel is
weak the other still carries the emotion, so fusing both is better than either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from mmer.errors import ConfigError, MediaError, MmerError
from mmer.files import atomic_path
from mmer.ravdess import EMOTIONS
from mmer.synth import face as facelib
from mmer.synth import voice as voicelib

logger = logging.getLogger(__name__)

SYNTH_VERSION = 1  # bump when the same seed would give different clips
MANIFEST = "synth.json"
FPS_NUM, FPS_DEN = 30000, 1001  # 29.97 fps, as RAVDESS
AUDIO_RATE = 48000
AUDIO_BITRATE = "128k"
X264_PRESET = "ultrafast"
X264_CRF = 20
DEFAULT_SIZE = (1280, 720)
MIN_SIZE = (96, 64)
MAX_SIZE = (3840, 2160)
MAX_ACTOR = 99
CLIPS_PER_ACTOR = 60  # every RAVDESS speech recording of one actor
INTENSITY_STRENGTH = {1: 1.0, 2: 1.6}
MOUTH_LEVELS = 5  # mouth openings rendered per clip (frames pick the nearest)
SPEECH_OPENING = 0.10  # IOD units of mouth opening at full articulation
VISUAL_LEAD_S = 0.04  # the mouth moves a little before the sound
SILENCE_S = (0.3, 1.0)  # room noise before and after the speech, s
CLIP_TARGET_S = (3.3, 4.3)  # drawn clip length (kept when the speech and silences allow)
CLIP_S = (3.0, 5.0)  # every clip's length is within this
ROOM_NOISE_DBFS = -66.0
NOISE_BELOW_SPEECH_DB = 46.0  # room noise stays this far below the loudest 25 ms of speech
WEAK_CHANNEL_P = 0.12  # chance that the face (and, separately, the voice) barely shows the emotion
WEAK_SCALE = 0.35  # strength of a weak channel
MIX_MAX = 0.3  # largest share of a random other emotion mixed into a channel
# head sway (IOD units) and resting offset (x, y) by emotion
HEAD_MOTION = {
    "neutral": (0.05, (0.0, 0.0)),
    "calm": (0.04, (0.0, 0.02)),
    "happy": (0.08, (0.0, -0.02)),
    "sad": (0.03, (0.0, 0.10)),
    "angry": (0.09, (0.0, 0.03)),
    "fearful": (0.06, (0.0, -0.04)),
    "disgust": (0.06, (0.04, -0.02)),
    "surprised": (0.07, (0.0, -0.07)),
}
SKIN_TONES = (
    (1.00, 0.84, 0.72),
    (1.00, 0.80, 0.66),
    (0.96, 0.78, 0.62),
    (0.92, 0.74, 0.58),
    (1.00, 0.87, 0.78),
    (0.88, 0.70, 0.56),
)
HAIR_COLOURS = ((0.10, 0.08, 0.06), (0.18, 0.12, 0.08), (0.05, 0.05, 0.05), (0.30, 0.22, 0.14), (0.42, 0.36, 0.28))


# -------------------------------------------------------------------------------- clips


@dataclass(frozen=True, order=True)
class ClipSpec:
    """One RAVDESS audio-video speech clip to make.

    Attributes
    ----------
    actor : int
        1-99; odd actors are male.
    emotion : int
        1-8 (RAVDESS code).
    intensity : int
        1 normal, 2 strong (neutral has only 1).
    statement : int
        1 "Kids are talking by the door", 2 "Dogs are sitting by the door".
    repetition : int
        1 or 2.
    """

    actor: int
    emotion: int
    intensity: int
    statement: int
    repetition: int

    def __post_init__(self) -> None:
        if not 1 <= self.actor <= MAX_ACTOR:
            raise ConfigError(f"actor {self.actor} not in 1-{MAX_ACTOR}")
        if self.emotion not in EMOTIONS:
            raise ConfigError(f"emotion {self.emotion} not in 1-8")
        if self.intensity not in (1, 2) or (self.emotion == 1 and self.intensity == 2):
            raise ConfigError(f"intensity {self.intensity} not valid for emotion {self.emotion} (neutral has only 1)")
        if self.statement not in (1, 2) or self.repetition not in (1, 2):
            raise ConfigError(f"statement {self.statement} / repetition {self.repetition} must be 1 or 2")

    @property
    def clip_id(self) -> str:
        """The seven-field RAVDESS id (modality 01 audio-video, vocal channel 01 speech)."""
        return (
            f"01-01-{self.emotion:02d}-{self.intensity:02d}-{self.statement:02d}-{self.repetition:02d}-{self.actor:02d}"
        )

    @property
    def relative_path(self) -> str:
        """``Actor_XX/<clip_id>.mp4``."""
        return f"Actor_{self.actor:02d}/{self.clip_id}.mp4"

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.emotion]


# (intensity, statement, repetition) in an order whose even-aligned windows of 2 and 4 are
# balanced, so any prefix of it (and a rotation by an even number) is as balanced as it can be
_BALANCED_ORDER = ((1, 1, 1), (2, 2, 1), (1, 2, 2), (2, 1, 2), (2, 1, 1), (1, 2, 1), (2, 2, 2), (1, 1, 2))
_NEUTRAL_ORDER = ((1, 1, 1), (1, 2, 2), (1, 2, 1), (1, 1, 2))


def actor_clips(actor: int, *, clips_per_actor: int | None = None) -> list[ClipSpec]:
    """The clips one actor performs: all 60, or a balanced selection of ``clips_per_actor``.

    The selection takes the emotions in turn (so 16 clips give two of each of the eight),
    and within an emotion alternates intensity, statement and repetition; where it starts
    rotates with the actor so that, over actors, every combination is used equally.

    Parameters
    ----------
    actor : int
        1-99.
    clips_per_actor : int, optional
        1-60; all 60 when not given.

    Returns
    -------
    list of ClipSpec
        Sorted by clip id.
    """
    count = CLIPS_PER_ACTOR if clips_per_actor is None else clips_per_actor
    if not 1 <= count <= CLIPS_PER_ACTOR:
        raise ConfigError(f"clips per actor must be in 1-{CLIPS_PER_ACTOR}, not {clips_per_actor}")
    if not 1 <= actor <= MAX_ACTOR:
        raise ConfigError(f"actor {actor} not in 1-{MAX_ACTOR}")
    shift = 2 * ((actor - 1) % 4)
    queues = {}
    for emotion in EMOTIONS:
        order = _NEUTRAL_ORDER if emotion == 1 else _BALANCED_ORDER
        start = shift % len(order)
        queues[emotion] = list(order[start:] + order[:start])
    emotions = list(EMOTIONS)
    first = (actor - 1) % len(emotions)
    emotions = emotions[first:] + emotions[:first]
    chosen: list[ClipSpec] = []
    while len(chosen) < count:
        for emotion in emotions:
            if queues[emotion] and len(chosen) < count:
                intensity, statement, repetition = queues[emotion].pop(0)
                chosen.append(ClipSpec(actor, emotion, intensity, statement, repetition))
    return sorted(chosen, key=lambda spec: spec.clip_id)


def clip_plan(actors: Sequence[int], *, clips_per_actor: int | None = None) -> list[ClipSpec]:
    """Every clip to make for ``actors`` (see :func:`actor_clips`), sorted by actor then id."""
    if not actors:
        raise ConfigError("no actors given")
    plan = []
    for actor in sorted(set(actors)):
        plan.extend(actor_clips(actor, clips_per_actor=clips_per_actor))
    return plan


# ------------------------------------------------------------------------------- actors


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator seeded by the corpus seed and keys that say what it is for."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]))


def _rngs(count: int, seed: int, *keys: int) -> list[np.random.Generator]:
    """``count`` independent generators for the parts of one thing (face, voice, ...)."""
    children = np.random.SeedSequence([int(seed), *[int(k) for k in keys]]).spawn(count)
    return [np.random.default_rng(child) for child in children]


@dataclass(frozen=True)
class ActorDesign:
    """Everything that stays the same across one actor's clips.

    Attributes
    ----------
    actor : int
    sex : str
    face : FaceStyle
    scene : SceneStyle
    gains : tuple of float
        White balance of the camera.
    iod_frac : float
        Inter-ocular distance as a share of the frame height.
    eyes : tuple of float
        Position of the point between the eyes as shares of width and height.
    roll_deg : float
        The actor's habitual head roll.
    voice : VoiceParams
        The actor's neutral voice.
    face_expressivity, voice_expressivity : float
        How strongly this actor shows emotion in each channel.
    """

    actor: int
    sex: str
    face: facelib.FaceStyle
    scene: facelib.SceneStyle
    gains: tuple[float, float, float]
    iod_frac: float
    eyes: tuple[float, float]
    roll_deg: float
    voice: voicelib.VoiceParams
    face_expressivity: float
    voice_expressivity: float


def face_pool(sex: str, *, seed: int) -> list[str]:
    """The faces of one sex in the order actors get them (a seeded shuffle).

    The astronaut, the one colour photograph, is always among the first 12 women, so she
    is in every 24-actor corpus.
    """
    names = facelib.face_names(sex)
    order = [names[i] for i in _rng(seed, 0, 1 if sex == "female" else 2).permutation(len(names))]
    if "astronaut" in order and order.index("astronaut") >= 12:
        at = order.index("astronaut")
        swap = int(_rng(seed, 0, 3).integers(0, 12))
        order[at], order[swap] = order[swap], order[at]
    return order


def design_actor(actor: int, *, seed: int) -> ActorDesign:
    """The look and voice of one actor (odd actors male: lower pitch, longer vocal tract).

    Parameters
    ----------
    actor : int
        1-99.
    seed : int
        Corpus seed.
    """
    if not 1 <= actor <= MAX_ACTOR:
        raise ConfigError(f"actor {actor} not in 1-{MAX_ACTOR}")
    sex = "male" if actor % 2 else "female"
    pool = face_pool(sex, seed=seed)
    index = (actor - 1) // 2
    source = pool[index % len(pool)]
    rng = _rng(seed, 1, actor)
    skin = np.asarray(SKIN_TONES[rng.integers(len(SKIN_TONES))]) * rng.uniform(0.97, 1.03, 3)
    hair = np.asarray(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]) * rng.uniform(0.9, 1.1)
    style = facelib.FaceStyle(
        source=source,
        skin=tuple(float(v) for v in np.clip(skin, 0.5, 1.0)),
        hair=tuple(float(v) for v in np.clip(hair, 0.0, 1.0)),
        contrast=float(rng.uniform(0.9, 1.15)),
        brightness=float(rng.uniform(-0.04, 0.05)),
    )
    wall_level = rng.uniform(0.88, 0.96)
    scene = facelib.SceneStyle(
        wall=tuple(float(v) for v in np.clip(wall_level * rng.uniform(0.99, 1.01, 3), 0.0, 1.0)),
        shirt=tuple(float(v) for v in np.full(3, rng.uniform(0.04, 0.14)) * rng.uniform(0.9, 1.1, 3)),
        neck=tuple(float(v) for v in np.asarray(style.skin) * rng.uniform(0.5, 0.62)),
        light=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.06, 0.0))),
    )
    gains = tuple(float(v) for v in np.exp(rng.normal(0.0, 0.015, 3)))
    if sex == "male":
        f0 = rng.uniform(95.0, 135.0)
    else:
        f0 = rng.uniform(180.0, 240.0)
    voice = voicelib.VoiceParams(
        f0_hz=float(f0),
        f0_range=float(rng.uniform(0.8, 1.25)),
        tempo=float(rng.uniform(0.88, 1.12)),
        loudness_db=float(rng.normal(0.0, 1.5)),
        tilt=float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3)),
        open_quotient=float(rng.uniform(0.5, 0.6)),
        breath=float(rng.uniform(0.02, 0.07)),
        formant_scale=float(rng.uniform(0.96, 1.04)),
    )
    return ActorDesign(
        actor=actor,
        sex=sex,
        face=style,
        scene=scene,
        gains=gains,  # type: ignore[arg-type]
        iod_frac=float(rng.uniform(0.125, 0.155)),
        eyes=(float(rng.uniform(0.44, 0.56)), float(rng.uniform(0.34, 0.41))),
        roll_deg=float(rng.normal(0.0, 2.0)),
        voice=voice,
        face_expressivity=float(rng.uniform(0.85, 1.2)),
        voice_expressivity=float(rng.uniform(0.75, 1.25)),
    )


# ------------------------------------------------------------------------- performances


@dataclass(frozen=True)
class Performance:
    """How one clip is acted: the expression, the voice, the head and the timing."""

    expression: facelib.FaceExpression
    voice: voicelib.VoiceParams
    face_strength: float
    voice_strength: float
    face_mix: tuple[str, float]
    voice_mix: tuple[str, float]
    roll_deg: float
    iod_scale: float
    offset: tuple[float, float]
    sway: float
    rest: tuple[float, float]
    sway_freqs: tuple[float, float, float, float]
    sway_phases: tuple[float, float, float, float]
    length_s: float
    lead_share: float


def _channel_strength(rng: np.random.Generator, base: float, *, weak: bool) -> float:
    strength = base * float(np.exp(rng.normal(0.0, 0.25)))
    return strength * WEAK_SCALE if weak else strength


def _other_emotion(rng: np.random.Generator, emotion: str) -> tuple[str, float]:
    others = [name for name in EMOTIONS.values() if name != emotion]
    return others[int(rng.integers(len(others)))], float(rng.uniform(0.0, MIX_MAX))


def perform(spec: ClipSpec, design: ActorDesign, *, seed: int) -> Performance:
    """Draw the performance of one clip (seeded by the seed and the clip's fields only).

    Parameters
    ----------
    spec : ClipSpec
    design : ActorDesign
        The clip's actor (:func:`design_actor`).
    seed : int
        Corpus seed.
    """
    face_rng, voice_rng, head_rng = _rngs(
        3, seed, 2, spec.actor, spec.emotion, spec.intensity, spec.statement, spec.repetition
    )
    emotion = spec.emotion_name
    intensity = INTENSITY_STRENGTH[spec.intensity]
    # at most one channel is weak, so the other one still carries the emotion
    weak = head_rng.choice(["face", "voice", "none"], p=[WEAK_CHANNEL_P, WEAK_CHANNEL_P, 1.0 - 2 * WEAK_CHANNEL_P])

    face_strength = _channel_strength(face_rng, intensity * design.face_expressivity, weak=weak == "face")
    face_other, face_share = _other_emotion(face_rng, emotion)
    expression = facelib.mix_expressions(
        (facelib.emotion_expression(emotion, strength=face_strength), 1.0 - face_share),
        (facelib.emotion_expression(face_other, strength=face_strength), face_share),
    )
    units = {name: value * float(np.exp(face_rng.normal(0.0, 0.2))) for name, value in expression.units.items()}
    for name in face_rng.choice(facelib.UNIT_NAMES, size=2, replace=False):
        units[str(name)] = units.get(str(name), 0.0) + float(face_rng.uniform(0.0, 0.15))
    expression = facelib.FaceExpression(
        units, expression.mouth_open * float(np.exp(face_rng.normal(0.0, 0.2))), expression.teeth
    )

    voice_strength = _channel_strength(voice_rng, intensity * design.voice_expressivity, weak=weak == "voice")
    voice_other, voice_share = _other_emotion(voice_rng, emotion)
    params = voicelib.emotion_voice(emotion, design.voice, strength=voice_strength * (1.0 - voice_share))
    params = voicelib.emotion_voice(voice_other, params, strength=voice_strength * voice_share)
    params = voicelib.perturb_voice(params, voice_rng)

    sway, rest = HEAD_MOTION[emotion]
    return Performance(
        expression=expression,
        voice=params,
        face_strength=face_strength,
        voice_strength=voice_strength,
        face_mix=(face_other, face_share),
        voice_mix=(voice_other, voice_share),
        roll_deg=float(design.roll_deg + head_rng.normal(0.0, 1.5)),
        iod_scale=float(np.exp(head_rng.normal(0.0, 0.03))),
        offset=(float(head_rng.normal(0.0, 0.012)), float(head_rng.normal(0.0, 0.01))),
        sway=float(sway * np.exp(head_rng.normal(0.0, 0.3))),
        rest=(rest[0] * intensity, rest[1] * intensity),
        sway_freqs=tuple(float(f) for f in head_rng.uniform(0.2, 0.9, 4)),  # type: ignore[arg-type]
        sway_phases=tuple(float(p) for p in head_rng.uniform(0.0, 2 * np.pi, 4)),  # type: ignore[arg-type]
        length_s=float(head_rng.uniform(*CLIP_TARGET_S)),
        lead_share=float(head_rng.uniform(0.35, 0.65)),
    )


# ------------------------------------------------------------------------------ rendering


@dataclass
class ClipMedia:
    """A rendered clip before encoding: audio, and frames made on demand."""

    audio: np.ndarray  # float32 at AUDIO_RATE, mono
    n_frames: int
    width: int
    height: int
    speech_span: tuple[float, float]  # seconds
    frames: Iterator[bytes | memoryview]


def frame_rate() -> float:
    return FPS_NUM / FPS_DEN


def render_clip(spec: ClipSpec, *, seed: int, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> ClipMedia:
    """Render one clip: its audio now, its frames lazily (YUV 4:2:0 bytes per frame).

    Parameters
    ----------
    spec : ClipSpec
    seed : int
        Corpus seed.
    width, height : int
        Frame size (even).

    Returns
    -------
    ClipMedia
    """
    check_size(width, height)
    design = design_actor(spec.actor, seed=seed)
    act = perform(spec, design, seed=seed)
    voice_rng, noise_rng = _rngs(2, seed, 3, spec.actor, spec.emotion, spec.intensity, spec.statement, spec.repetition)
    utterance = voicelib.synthesise(spec.statement, act.voice, voice_rng, female=design.sex == "female")
    audio, n_frames, span = clip_audio(utterance, act, noise_rng, clip_id=spec.clip_id)
    frames = clip_frames(
        design, act, utterance.mouth, width=width, height=height, n_frames=n_frames, speech_start=span[0]
    )
    return ClipMedia(audio=audio, n_frames=n_frames, width=width, height=height, speech_span=span, frames=frames)


def clip_audio(
    utterance: voicelib.Utterance, act: Performance, noise_rng: np.random.Generator, *, clip_id: str = ""
) -> tuple[np.ndarray, int, tuple[float, float]]:
    """The clip's soundtrack: room noise with the speech placed after the lead-in.

    Returns
    -------
    audio : ndarray, float32
        Mono at :data:`AUDIO_RATE`, exactly as long as the video.
    n_frames : int
        Video frames of the clip.
    span : tuple of float
        Start and end of the speech, seconds.
    """
    speech = signal.resample_poly(utterance.audio, AUDIO_RATE // voicelib.SAMPLE_RATE, 1).astype(np.float32)
    speech_s = len(speech) / AUDIO_RATE
    # room noise around the speech fills the clip to its drawn length, within the limits
    quiet = max(act.length_s - speech_s, 2 * SILENCE_S[0])
    lead = float(np.clip(quiet * act.lead_share, *SILENCE_S))
    trail = float(np.clip(quiet - lead, *SILENCE_S))
    fps = frame_rate()
    n_frames = int(np.ceil((lead + speech_s + trail) * fps))
    if not CLIP_S[0] <= n_frames / fps <= CLIP_S[1]:
        raise MmerError(
            f"{clip_id}: the clip would last {n_frames / fps:.2f} s (speech {speech_s:.2f} s), outside {CLIP_S[0]}-{CLIP_S[1]} s"
        )
    n_samples = int(round(n_frames / fps * AUDIO_RATE))
    start = int(round(lead * AUDIO_RATE))
    frame_len = int(0.025 * AUDIO_RATE)
    usable = len(speech) - len(speech) % frame_len
    loudest = 20 * np.log10(np.sqrt(np.max(np.mean(speech[:usable].reshape(-1, frame_len) ** 2, axis=1))) + 1e-12)
    noise_db = min(ROOM_NOISE_DBFS + float(noise_rng.normal(0.0, 1.5)), loudest - NOISE_BELOW_SPEECH_DB)
    audio = voicelib.room_noise(n_samples, noise_rng, level_dbfs=noise_db, sample_rate=AUDIO_RATE)
    end = min(start + len(speech), n_samples)
    audio[start:end] += speech[: end - start]
    return audio, n_frames, (start / AUDIO_RATE, end / AUDIO_RATE)


def clip_frames(
    design: ActorDesign,
    act: Performance,
    mouth_track: np.ndarray,
    *,
    width: int,
    height: int,
    n_frames: int,
    speech_start: float,
) -> Iterator[memoryview]:
    """The clip's frames, made one at a time into one reused YUV 4:2:0 buffer.

    The face is rendered once per mouth opening (:data:`MOUTH_LEVELS`); each frame picks
    the opening of the speech at its time and places the head where its sway has it.
    """
    fps = frame_rate()
    iod_px = design.iod_frac * height * act.iod_scale
    eyes = ((design.eyes[0] + act.offset[0]) * width, (design.eyes[1] + act.offset[1]) * height)
    background = facelib.frame_yuv420(
        facelib.render_background(design.scene, width=width, height=height, eyes=eyes, iod_px=iod_px),
        gains=design.gains,
    )
    widest = float(np.clip(mouth_track.max(), 0.05, 1.5))
    openings = np.linspace(0.0, widest, MOUTH_LEVELS) * SPEECH_OPENING
    patches = facelib.face_levels_yuv420(
        design.face, act.expression, iod_px=iod_px, roll_deg=act.roll_deg, openings=openings, gains=design.gains
    )

    times = np.arange(n_frames) / fps
    track_times = np.arange(len(mouth_track)) / voicelib.ENVELOPE_RATE
    mouth = np.interp(times - speech_start + VISUAL_LEAD_S, track_times, mouth_track, left=0.0, right=0.0)
    levels = np.rint(np.clip(mouth / widest, 0.0, 1.0) * (MOUTH_LEVELS - 1)).astype(int)
    f, p = act.sway_freqs, act.sway_phases
    sway_x = act.sway * (0.6 * np.sin(2 * np.pi * f[0] * times + p[0]) + 0.4 * np.sin(2 * np.pi * f[1] * times + p[1]))
    sway_y = act.sway * (0.6 * np.sin(2 * np.pi * f[2] * times + p[2]) + 0.4 * np.sin(2 * np.pi * f[3] * times + p[3]))
    # settle into the emotion's resting pose over the first half second
    settle = np.clip(times / 0.5, 0.0, 1.0)
    head_x = eyes[0] + iod_px * (sway_x + act.rest[0] * settle)
    head_y = eyes[1] + iod_px * (sway_y + act.rest[1] * settle)

    buffer = np.empty(width * height * 3 // 2, dtype=np.uint8)
    y_size, c_size = width * height, width * height // 4
    planes = (
        buffer[:y_size].reshape(height, width),
        buffer[y_size : y_size + c_size].reshape(height // 2, width // 2),
        buffer[y_size + c_size :].reshape(height // 2, width // 2),
    )
    for index in range(n_frames):
        patch = patches[levels[index]]
        left = int(round(head_x[index] - patch.anchor[0]))
        top = int(round(head_y[index] - patch.anchor[1]))
        facelib.composite_yuv420(background, patch, left=left, top=top, out=planes)
        yield memoryview(buffer)


# ------------------------------------------------------------------------------- writing


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM (deterministic rounding, no dither)."""
    pcm = np.clip(np.rint(np.asarray(audio, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())


def encode_command(out_path: str | Path, wav_path: str | Path, *, width: int, height: int) -> list[str]:
    """The ffmpeg command that muxes raw YUV frames from stdin and a wav into an .mp4.

    Single-threaded x264 and bit-exact flags make the output a function of the input only.
    """
    import ffmpeg

    video = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="yuv420p", s=f"{width}x{height}", framerate=f"{FPS_NUM}/{FPS_DEN}"
    )
    audio = ffmpeg.input(str(wav_path))
    stream = ffmpeg.output(
        video,
        audio,
        str(out_path),
        format="mp4",
        vcodec="libx264",
        pix_fmt="yuv420p",
        preset=X264_PRESET,
        crf=X264_CRF,
        acodec="aac",
        audio_bitrate=AUDIO_BITRATE,
        ar=AUDIO_RATE,
        ac=1,
        threads=1,
        map_metadata=-1,
        fflags="+bitexact",
        movflags="+faststart",
        **{"flags:v": "+bitexact", "flags:a": "+bitexact", "x264-params": "threads=1:sliced-threads=0"},
    )
    stream = stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").overwrite_output()
    return stream.compile(cmd=ffmpeg_exe())


def encode_clip(media: ClipMedia, path: str | Path) -> None:
    """Encode ``media`` to ``path`` (H.264 + AAC in .mp4), written under a temporary name first.

    Raises
    ------
    MediaError
        When ffmpeg fails; the message carries the end of its error output.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="mmer-synth-") as tmp_dir:
        wav_path = Path(tmp_dir) / "audio.wav"
        log_path = Path(tmp_dir) / "ffmpeg.log"
        write_wav(wav_path, media.audio, AUDIO_RATE)
        with atomic_path(path) as tmp, open(log_path, "wb") as log:
            command = encode_command(tmp, wav_path, width=media.width, height=media.height)
            # stderr goes to a file: a pipe nobody reads while frames are written could fill up
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
            assert process.stdin is not None
            try:
                for frame in media.frames:
                    process.stdin.write(frame)
                process.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped early: its log says why
            except BaseException:
                process.kill()
                process.wait()
                raise
            code = process.wait()
            if code != 0:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise MediaError(f"{path}: ffmpeg failed with exit code {code}: {' | '.join(tail) or 'no message'}")
            # the temporary file was created private; give the clip the usual permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread: the small solves and products of a clip only lose time to
    thread start-up, and each worker process is meant to use one core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up (threadpoolctl comes with scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True)
class SynthJob:
    """One clip to write (picklable: it crosses into worker processes)."""

    spec: ClipSpec
    out_dir: str
    seed: int
    width: int
    height: int


def synth_clip(job: SynthJob) -> dict:
    """Render and encode one clip; the per-clip function of :func:`synth_corpus`.

    Returns
    -------
    dict
        ``path``, ``seconds`` (wall time) and ``frames``.
    """
    started = time.perf_counter()
    path = Path(job.out_dir) / job.spec.relative_path
    with _one_blas_thread():
        media = render_clip(job.spec, seed=job.seed, width=job.width, height=job.height)
        encode_clip(media, path)
    seconds = time.perf_counter() - started
    logger.debug("%s: %d frames in %.2f s", path, media.n_frames, seconds)
    return {"path": str(path), "seconds": seconds, "frames": media.n_frames}


# -------------------------------------------------------------------------------- corpus


def check_size(width: int, height: int) -> None:
    """Raise :class:`ConfigError` unless the frame size is even and within limits."""
    if width % 2 or height % 2:
        raise ConfigError(f"frame size {width}x{height}: width and height must be even (yuv420p)")
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise ConfigError(
            f"frame size {width}x{height} not within {MIN_SIZE[0]}x{MIN_SIZE[1]} to {MAX_SIZE[0]}x{MAX_SIZE[1]}"
        )
    if width < height:
        raise ConfigError(f"frame size {width}x{height}: landscape frames only (width >= height)")


@dataclass
class SynthSummary:
    """What :func:`synth_corpus` did."""

    out_dir: str
    planned: int
    written: int
    skipped: int
    seconds: float
    clip_seconds: list[float]

    @property
    def mean_clip_seconds(self) -> float:
        return float(np.mean(self.clip_seconds)) if self.clip_seconds else 0.0


def _manifest(seed: int, width: int, height: int) -> dict:
    from mmer import __version__

    return {
        "generator": "mmer synth",
        "synth_version": SYNTH_VERSION,
        "mmer_version": __version__,
        "seed": seed,
        "size": f"{width}x{height}",
        "fps": f"{FPS_NUM}/{FPS_DEN}",
        "audio": f"aac {AUDIO_RATE} Hz mono",
    }


def _check_manifest(out_dir: Path, wanted: dict) -> None:
    path = out_dir / MANIFEST
    if not path.is_file():
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{path}: unreadable manifest of an earlier run ({err}); remove it or use another --out"
        ) from err
    for key in ("synth_version", "seed", "size"):
        if found.get(key) != wanted[key]:
            raise ConfigError(
                f"{out_dir} holds clips made with {key}={found.get(key)!r}, not {wanted[key]!r}: "
                f"use another --out (or the same options) so one corpus does not mix two"
            )


def _remove_stale_parts(out_dir: Path) -> None:
    """Delete temporary files that an interrupted earlier run left behind."""
    for part in out_dir.glob("Actor_*/.01-01-*.mp4.*.part"):
        logger.info("removing %s (left by an interrupted run)", part)
        part.unlink(missing_ok=True)


def synth_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    actors: Sequence[int] = tuple(range(1, 25)),
    clips_per_actor: int | None = None,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    jobs: int = 1,
    progress: bool = True,
) -> SynthSummary:
    """Write a RAVDESS-shaped sample corpus; clips already in ``out_dir`` are kept.

    Parameters
    ----------
    out_dir : str or Path
        Gets ``Actor_XX/01-01-EE-II-SS-RR-XX.mp4`` files and a ``synth.json`` manifest.
    seed : int
        Corpus seed (>= 0); the same seed gives the same files.
    actors : sequence of int
        Actor numbers, 1-99 (odd: male).
    clips_per_actor : int, optional
        A balanced selection of 1-60 clips per actor; all 60 when not given.
    width, height : int
        Frame size.
    jobs : int
        Worker processes (1: this process).
    progress : bool
        Show a progress bar.

    Returns
    -------
    SynthSummary

    Raises
    ------
    ConfigError
        Bad options, or ``out_dir`` holds a corpus made with another seed or size.
    MmerError
        When clips could not be written (the reasons of the first few are given).
    """
    from mmer.batch import map_clips

    if seed < 0:
        raise ConfigError(f"seed must be >= 0, not {seed}")
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, not {jobs}")
    check_size(width, height)
    plan = clip_plan(actors, clips_per_actor=clips_per_actor)
    out = Path(out_dir)
    manifest = _manifest(seed, width, height)
    _check_manifest(out, manifest)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(out)
    todo = [spec for spec in plan if not (out / spec.relative_path).is_file()]
    skipped = len(plan) - len(todo)
    if skipped:
        logger.info("%d of %d clips already in %s: kept", skipped, len(plan), out)
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    started = time.perf_counter()
    if not todo:
        return SynthSummary(str(out), len(plan), 0, skipped, 0.0, [])
    jobs_list = [SynthJob(spec, str(out), seed, width, height) for spec in todo]
    result = map_clips(
        synth_clip,
        jobs_list,
        keys=[spec.clip_id for spec in todo],
        paths=[str(out / spec.relative_path) for spec in todo],
        stage="synth",
        jobs=min(jobs, len(todo)),
        progress=progress,
    )
    seconds = time.perf_counter() - started
    if result.failures:
        reasons = "; ".join(f"{f['clip_id']}: {f['reason']}" for f in result.failures[:3])
        raise MmerError(f"synth: {len(result.failures)} of {len(todo)} clips could not be written in {out} ({reasons})")
    clip_seconds = [r["seconds"] for r in result.results.values()]
    summary = SynthSummary(str(out), len(plan), len(result.results), skipped, seconds, clip_seconds)
    logger.info(
        "synth: wrote %d clips (%d actors, %dx%d) to %s in %.1f s (%.2f s per clip per worker)",
        summary.written,
        len(set(actors)),
        width,
        height,
        out,
        seconds,
        summary.mean_clip_seconds,
    )
    return summary


def performance_summary(spec: ClipSpec, *, seed: int) -> dict:
    """The drawn performance of a clip as plain data (for inspection and tests)."""
    design = design_actor(spec.actor, seed=seed)
    act = perform(spec, design, seed=seed)
    out = asdict(act)
    out["face"] = design.face.source
    out["sex"] = design.sex
    return out


__all__ = [
    "ClipSpec",
    "ActorDesign",
    "Performance",
    "actor_clips",
    "clip_plan",
    "design_actor",
    "face_pool",
    "perform",
    "render_clip",
    "clip_audio",
    "clip_frames",
    "encode_clip",
    "synth_clip",
    "synth_corpus",
    "check_size",
]
