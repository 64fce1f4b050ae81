"""Synthetic emotional speech: a source-filter voice saying the two RAVDESS statements.

Pure numpy/scipy, arrays in and out. The utterance is built as in a classic formant
synthesiser:

* **Timing**: the phones of "Kids are talking by the door" (statement 1) or "Dogs are
  sitting by the door" (statement 2), seven syllables each, with durations scaled by the
  speaking rate (vowels stretch more than consonants) and jittered per clip.
* **Source**: a glottal pulse train (Rosenberg pulse, differentiated) following an F0
  contour (declination, pitch accents on the stressed syllables, a final fall or rise,
  tremor), with per-cycle jitter and shimmer, aspiration noise for breathiness,
  period doubling for creak, and a spectral tilt filter for vocal effort.
* **Filter**: four formant resonators in cascade whose frequencies move from phone to
  phone (block-wise time-varying IIR filters); stops and fricatives add band-passed noise.
* **Prosody**: syllable envelopes (stressed syllables louder), overall loudness.

Emotion (:data:`EMOTION_VOICE`) moves pitch level, range and final contour, tempo,
loudness, voice quality (breathiness, jitter/shimmer, creak, tilt) and formants (a
smile raises them). What the voice alone confuses, by design:

* happy and surprised get the same voice (high, wide, bright, a little fast); only the
  final contour differs (surprised rises), and the per-clip variation covers it;
* neutral and calm differ only slightly (calm is a bit lower, slower, softer, breathier);
  sad goes further the same way, so it is partly confused with both;
* angry (loud, tense, bright, fast) and disgust (low, slow, creaky), and fearful
  (high but narrow, fast, breathy, trembling) and surprised, which the face confuses,
  are well apart in the voice.

See :mod:`mmer.synth.face` for the other half of the design.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy import signal

from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz of synthesis (speech band); the corpus upsamples to 48 kHz
BLOCK = 80  # samples (5 ms) between formant updates
ENVELOPE_RATE = 100  # Hz of the articulation (mouth opening) track
F0_MIN, F0_MAX = 55.0, 600.0
SPEECH_RMS_DBFS = -23.0  # active-speech level of a neutral utterance

# ARPAbet-like phones: kind, formants F1-F3 (Hz, adult male), mouth opening 0-1
PHONES: dict[str, tuple[str, tuple[float, float, float], float]] = {
    "IH": ("vowel", (400.0, 1900.0, 2550.0), 0.40),
    "AA": ("vowel", (730.0, 1090.0, 2440.0), 0.95),
    "AO": ("vowel", (570.0, 840.0, 2410.0), 0.80),
    "AH": ("vowel", (520.0, 1400.0, 2500.0), 0.50),
    "AY": ("diphthong", (730.0, 1090.0, 2440.0), 0.85),
    "R": ("approximant", (460.0, 1200.0, 1650.0), 0.35),
    "NG": ("nasal", (300.0, 1100.0, 2500.0), 0.15),
    "K": ("stop", (350.0, 1800.0, 2500.0), 0.20),
    "G": ("stop", (350.0, 1800.0, 2500.0), 0.20),
    "T": ("stop", (350.0, 1700.0, 2600.0), 0.15),
    "D": ("stop", (350.0, 1700.0, 2600.0), 0.15),
    "B": ("stop", (350.0, 1000.0, 2300.0), 0.0),
    "DX": ("flap", (400.0, 1700.0, 2600.0), 0.20),
    "S": ("fricative", (400.0, 1700.0, 2600.0), 0.12),
    "Z": ("fricative", (400.0, 1700.0, 2600.0), 0.12),
    "DH": ("fricative", (400.0, 1500.0, 2500.0), 0.25),
}
AY_END = (420.0, 1950.0, 2550.0)
VOICED = {"G", "D", "B", "DX", "Z", "DH", "R", "NG"}
# noise band (Hz) and level of the consonants that make noise
NOISE_BANDS: dict[str, tuple[float, float, float]] = {
    "K": (1500.0, 3600.0, 0.55),
    "G": (1400.0, 3000.0, 0.25),
    "T": (3000.0, 7000.0, 0.55),
    "D": (2500.0, 5500.0, 0.25),
    "B": (300.0, 2500.0, 0.15),
    "S": (4000.0, 7800.0, 0.45),
    "Z": (3800.0, 7800.0, 0.25),
    "DH": (1500.0, 6000.0, 0.10),
}
VOICING_LEVEL = {
    "vowel": 1.0,
    "diphthong": 1.0,
    "approximant": 0.8,
    "nasal": 0.45,
    "flap": 0.5,
    "stop": 0.10,
    "fricative": 0.30,
}

# (stress 0-1, [(phone, duration in ms at rate 1)]) per syllable
_BY_THE_DOOR = [
    (0.55, [("B", 55), ("AY", 175)]),
    (0.15, [("DH", 45), ("AH", 60)]),
    (1.0, [("D", 65), ("AO", 185), ("R", 135)]),
]
STATEMENTS: dict[int, list[tuple[float, list[tuple[str, int]]]]] = {
    1: [  # Kids are talking by the door
        (1.0, [("K", 75), ("IH", 115), ("D", 40), ("Z", 90)]),
        (0.3, [("AA", 95), ("R", 55)]),
        (0.9, [("T", 75), ("AO", 145)]),
        (0.25, [("K", 60), ("IH", 70), ("NG", 70)]),
        *_BY_THE_DOOR,
    ],
    2: [  # Dogs are sitting by the door
        (1.0, [("D", 60), ("AO", 135), ("G", 40), ("Z", 90)]),
        (0.3, [("AA", 95), ("R", 55)]),
        (0.9, [("S", 115), ("IH", 120)]),
        (0.25, [("DX", 30), ("IH", 70), ("NG", 70)]),
        *_BY_THE_DOOR,
    ],
}
FORMANT_BANDWIDTHS = (90.0, 110.0, 170.0, 250.0, 300.0)
F4_HZ, F5_HZ = 3500.0, 4500.0
TILT_DB = 18.0  # high-shelf gain at tilt 1 (negative: duller)
TILT_CORNER_HZ = 1000.0


@dataclass(frozen=True)
class VoiceParams:
    """Everything that shapes one utterance.

    Attributes
    ----------
    f0_hz : float
        The speaker's reference pitch (male ~110 Hz, female ~210 Hz).
    f0_shift : float
        Pitch level relative to ``f0_hz``, semitones.
    f0_range : float
        Scale of the pitch accents and declination (1: neutral).
    final : float
        Pitch movement over the last syllable, semitones (negative: a fall).
    tremor : float
        Depth of a 6 Hz pitch tremor, semitones.
    tempo : float
        Speaking rate (1: neutral, >1 faster).
    loudness_db : float
        Level relative to :data:`SPEECH_RMS_DBFS`.
    tilt : float
        Spectral tilt, -1 (bright, tense) to 1 (dull, soft).
    open_quotient : float
        Share of each glottal cycle that is open (0.35 tense to 0.75 breathy).
    breath : float
        Aspiration noise relative to the voicing.
    jitter, shimmer : float
        Per-cycle relative perturbation of period and amplitude.
    creak : float
        Period doubling (vocal fry) towards the end of the utterance, 0-1.
    formant_scale : float
        Scales all formants (vocal tract length; a smile raises them).
    f1_scale : float
        Extra scale of F1 (jaw opening with vocal effort).
    articulation : float
        Scale of the mouth opening track (how much the face's mouth moves).
    """

    f0_hz: float = 120.0
    f0_shift: float = 0.0
    f0_range: float = 1.0
    final: float = -3.0
    tremor: float = 0.0
    tempo: float = 1.0
    loudness_db: float = 0.0
    tilt: float = 0.0
    open_quotient: float = 0.55
    breath: float = 0.04
    jitter: float = 0.005
    shimmer: float = 0.03
    creak: float = 0.0
    formant_scale: float = 1.0
    f1_scale: float = 1.0
    articulation: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not F0_MIN <= self.f0_hz <= F0_MAX:
            problems.append(f"f0_hz {self.f0_hz} not in {F0_MIN}-{F0_MAX}")
        if not 0.3 <= self.tempo <= 3.0:
            problems.append(f"tempo {self.tempo} not in 0.3-3")
        if not 0.2 <= self.open_quotient <= 0.9:
            problems.append(f"open_quotient {self.open_quotient} not in 0.2-0.9")
        if not -1.0 <= self.tilt <= 1.0:
            problems.append(f"tilt {self.tilt} not in -1..1")
        if min(self.breath, self.jitter, self.shimmer, self.creak, self.tremor) < 0:
            problems.append("breath, jitter, shimmer, creak and tremor must be >= 0")
        if not 0.5 <= self.formant_scale <= 2.0 or not 0.5 <= self.f1_scale <= 2.0:
            problems.append(f"formant_scale {self.formant_scale} / f1_scale {self.f1_scale} not in 0.5-2")
        if problems:
            raise ConfigError("bad voice parameters: " + "; ".join(problems))


# how each emotion moves the voice away from neutral (additive, except the multiplicative
# f0_range, tempo, formant_scale, f1_scale and articulation, given as factors)
EMOTION_VOICE: dict[str, dict[str, float]] = {
    "neutral": {},
    "calm": {
        "f0_shift": -0.8,
        "f0_range": 0.85,
        "tempo": 0.93,
        "loudness_db": -2.0,
        "tilt": 0.15,
        "open_quotient": 0.04,
        "breath": 0.04,
        "articulation": 0.9,
    },
    "sad": {
        "f0_shift": -1.8,
        "f0_range": 0.6,
        "final": -1.0,
        "tempo": 0.86,
        "loudness_db": -4.0,
        "tilt": 0.30,
        "open_quotient": 0.09,
        "breath": 0.08,
        "jitter": 0.005,
        "shimmer": 0.02,
        "tremor": 0.1,
        "formant_scale": 0.98,
        "articulation": 0.7,
    },
    "happy": {
        "f0_shift": 4.0,
        "f0_range": 1.8,
        "final": 1.0,
        "tempo": 1.08,
        "loudness_db": 3.0,
        "tilt": -0.30,
        "open_quotient": -0.05,
        "formant_scale": 1.05,
        "articulation": 1.2,
    },
    "surprised": {
        "f0_shift": 4.5,
        "f0_range": 1.9,
        "final": 3.5,
        "tempo": 1.05,
        "loudness_db": 3.0,
        "tilt": -0.30,
        "open_quotient": -0.05,
        "breath": 0.01,
        "formant_scale": 1.05,
        "articulation": 1.3,
    },
    "angry": {
        "f0_shift": 2.5,
        "f0_range": 1.4,
        "final": -2.0,
        "tempo": 1.12,
        "loudness_db": 7.0,
        "tilt": -0.60,
        "open_quotient": -0.17,
        "breath": -0.02,
        "jitter": 0.005,
        "shimmer": 0.03,
        "f1_scale": 1.10,
        "articulation": 1.35,
    },
    "fearful": {
        "f0_shift": 5.5,
        "f0_range": 0.7,
        "final": 2.0,
        "tremor": 0.6,
        "tempo": 1.18,
        "loudness_db": 1.0,
        "tilt": 0.10,
        "open_quotient": 0.07,
        "breath": 0.18,
        "jitter": 0.015,
        "shimmer": 0.04,
        "formant_scale": 1.02,
        "articulation": 0.9,
    },
    "disgust": {
        "f0_shift": -1.5,
        "f0_range": 1.1,
        "final": -2.0,
        "tempo": 0.78,
        "loudness_db": 1.0,
        "tilt": 0.20,
        "breath": 0.02,
        "jitter": 0.02,
        "shimmer": 0.06,
        "creak": 0.6,
        "formant_scale": 0.98,
        "articulation": 1.0,
    },
}
_FACTORS = {"f0_range", "tempo", "formant_scale", "f1_scale", "articulation"}
_LIMITS = {
    "tilt": (-1.0, 1.0),
    "open_quotient": (0.3, 0.85),
    "breath": (0.0, 1.0),
    "jitter": (0.0, 0.08),
    "shimmer": (0.0, 0.3),
    "creak": (0.0, 1.0),
    "tremor": (0.0, 2.0),
    "tempo": (0.55, 1.45),
    "formant_scale": (0.8, 1.3),
    "f1_scale": (0.8, 1.3),
}


def emotion_voice(emotion: str, base: VoiceParams, *, strength: float = 1.0) -> VoiceParams:
    """The speaker's voice ``base`` moved towards ``emotion`` by ``strength``.

    Parameters
    ----------
    emotion : str
        One of the eight RAVDESS emotion names.
    base : VoiceParams
        The speaker's neutral voice.
    strength : float
        1 for the prototype (normal intensity); larger exaggerates, 0 gives ``base``.

    Returns
    -------
    VoiceParams
    """
    if emotion not in EMOTION_VOICE:
        raise ConfigError(f"unknown emotion {emotion!r}; expected one of {list(EMOTION_VOICE)}")
    values = {f.name: getattr(base, f.name) for f in fields(VoiceParams)}
    for name, delta in EMOTION_VOICE[emotion].items():
        if name in _FACTORS:
            values[name] *= float(delta) ** strength
        else:
            values[name] += strength * delta
    for name, (low, high) in _LIMITS.items():
        values[name] = float(np.clip(values[name], low, high))
    return VoiceParams(**values)


def perturb_voice(params: VoiceParams, rng: np.random.Generator, *, scale: float = 1.0) -> VoiceParams:
    """Per-clip variation: every parameter moved a little at random.

    Parameters
    ----------
    params : VoiceParams
    rng : numpy.random.Generator
    scale : float
        0 returns ``params`` unchanged; 1 is the corpus's variation.
    """
    if scale <= 0:
        return params
    spreads = {
        "f0_shift": 1.2,
        "f0_range": 0.18,
        "final": 1.2,
        "tempo": 0.06,
        "loudness_db": 1.5,
        "tilt": 0.12,
        "open_quotient": 0.04,
        "breath": 0.35,
        "jitter": 0.3,
        "shimmer": 0.3,
        "formant_scale": 0.015,
        "f1_scale": 0.02,
        "articulation": 0.12,
    }
    values = {f.name: getattr(params, f.name) for f in fields(VoiceParams)}
    for name, spread in spreads.items():
        draw = rng.normal(0.0, spread * scale)
        if name in _FACTORS or name in ("breath", "jitter", "shimmer"):
            values[name] *= float(np.exp(draw))
        else:
            values[name] += draw
    for name, (low, high) in _LIMITS.items():
        values[name] = float(np.clip(values[name], low, high))
    return replace(params, **values)


@dataclass
class Utterance:
    """A synthesised utterance.

    Attributes
    ----------
    audio : ndarray, shape (n,), float32
        Speech at :data:`SAMPLE_RATE`, no leading or trailing silence.
    mouth : ndarray, shape (m,), float32
        Mouth opening 0-1 at :data:`ENVELOPE_RATE` Hz, aligned with ``audio``.
    f0 : ndarray, shape (n,), float32
        The F0 contour used, Hz (defined everywhere, used where voiced).
    voiced : ndarray, shape (n,), float32
        Voicing amplitude 0-1.
    """

    audio: np.ndarray
    mouth: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class _Segment:
    phone: str
    start: int
    end: int
    syllable: int
    stress: float


def phone_timeline(
    statement: int, *, tempo: float = 1.0, rng: np.random.Generator | None = None, jitter: float = 0.08
) -> list[_Segment]:
    """Phone segments of a statement, in samples at :data:`SAMPLE_RATE`.

    Vowels scale with ``1 / tempo``, consonants with ``1 / sqrt(tempo)``; each duration is
    jittered by a factor ``exp(N(0, jitter))`` when ``rng`` is given.
    """
    if statement not in STATEMENTS:
        raise ConfigError(f"statement must be 1 or 2, not {statement!r}")
    if not 0.3 <= tempo <= 3.0:
        raise ConfigError(f"tempo {tempo} not in 0.3-3")
    segments = []
    position = 0
    for index, (stress, phones) in enumerate(STATEMENTS[statement]):
        for phone, ms in phones:
            kind = PHONES[phone][0]
            elastic = kind in ("vowel", "diphthong", "approximant", "nasal")
            seconds = ms / 1000.0 / (tempo if elastic else np.sqrt(tempo))
            if rng is not None:
                seconds *= float(np.exp(rng.normal(0.0, jitter)))
            length = max(int(round(seconds * SAMPLE_RATE)), BLOCK)
            segments.append(_Segment(phone, position, position + length, index, stress))
            position += length
    return segments


def f0_contour(segments: list[_Segment], params: VoiceParams, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """The F0 of every sample, Hz: declination, accents, final movement, tremor, drift.

    Parameters
    ----------
    segments : list
        From :func:`phone_timeline`.
    params : VoiceParams
    rng : numpy.random.Generator, optional
        Adds a slow random drift (and random tremor phase); without it the contour is the
        deterministic prototype.

    Returns
    -------
    ndarray, shape (n,), float32
    """
    n = segments[-1].end
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    total = n / SAMPLE_RATE
    semitones = params.f0_shift + params.f0_range * (1.0 - 2.5 * t / total)
    n_syllables = segments[-1].syllable + 1
    for syllable in range(n_syllables):
        parts = [s for s in segments if s.syllable == syllable]
        nucleus = [s for s in parts if PHONES[s.phone][0] in ("vowel", "diphthong")] or parts
        centre = (nucleus[0].start + nucleus[-1].end) / 2.0 / SAMPLE_RATE
        width = 0.35 * (nucleus[-1].end - nucleus[0].start) / SAMPLE_RATE + 0.03
        height = 3.2 * parts[0].stress * params.f0_range
        if syllable == n_syllables - 1:
            height *= 0.6
        semitones += height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    last = [s for s in segments if s.syllable == n_syllables - 1]
    final_start = next((s.start for s in last if PHONES[s.phone][0] in ("vowel", "diphthong")), last[0].start)
    ramp = np.clip((np.arange(n) - final_start) / max(n - final_start, 1), 0.0, 1.0)
    semitones += params.final * ramp
    phase = rng.uniform(0, 2 * np.pi) if rng is not None else 0.0
    semitones += params.tremor * np.sin(2 * np.pi * 6.0 * t + phase)
    if rng is not None:
        knots = rng.normal(0.0, 0.35, size=int(total / 0.15) + 2)
        semitones += np.interp(t, np.linspace(0, total, len(knots)), knots)
    semitones -= 3.0 * params.creak * ramp
    f0 = params.f0_hz * 2.0 ** (semitones / 12.0)
    return np.clip(f0, F0_MIN, F0_MAX).astype(np.float32)


def glottal_source(
    f0: np.ndarray, params: VoiceParams, rng: np.random.Generator, *, creak_from: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A glottal flow-derivative pulse train with jitter, shimmer, creak and aspiration.

    Parameters
    ----------
    f0 : ndarray, shape (n,)
        F0 of every sample, Hz.
    params : VoiceParams
    rng : numpy.random.Generator
    creak_from : int, optional
        Sample where creak (period doubling) starts fading in.

    Returns
    -------
    pulses : ndarray, shape (n,), float32
        The voiced excitation (the derivative of the glottal flow, which includes the
        radiation at the lips).
    aspiration : ndarray, shape (n,), float32
        White breath noise modulated by the glottal opening.
    """
    n = len(f0)
    nominal_phase = np.cumsum(f0 / SAMPLE_RATE)
    cycle = nominal_phase.astype(np.int64)
    # jitter and creak can add cycles: leave room, and clip indices below
    n_cycles = int(cycle[-1] * 1.5) + 16
    period_noise = rng.normal(0.0, 1.0, n_cycles)
    amplitude_noise = rng.normal(0.0, 1.0, n_cycles)
    creak = np.zeros(n)
    if params.creak > 0 and creak_from is not None:
        creak = params.creak * np.clip((np.arange(n) - creak_from) / max(n - creak_from, 1) * 2.0, 0.0, 1.0)
    alternate = np.where(cycle % 2 == 0, 1.0, -1.0)
    f0_cycle = f0 * (1.0 + params.jitter * period_noise[cycle]) * (1.0 + 0.25 * creak * alternate)
    phase = np.cumsum(f0_cycle / SAMPLE_RATE)
    cycle = np.minimum(phase.astype(np.int64), n_cycles - 1)
    p = phase - np.floor(phase)
    oq = params.open_quotient
    rise, fall = 0.6 * oq, 0.4 * oq
    flow = np.where(p < rise, 0.5 * (1.0 - np.cos(np.pi * p / rise)), 0.0)
    closing = (p >= rise) & (p < rise + fall)
    flow = np.where(closing, np.cos(0.5 * np.pi * (p - rise) / fall), flow)
    amplitude = (1.0 + params.shimmer * amplitude_noise[cycle]) * (1.0 - 0.6 * creak * (alternate < 0))
    flow = flow * amplitude
    derivative = np.diff(flow, prepend=flow[0]) * (SAMPLE_RATE / np.maximum(f0_cycle, F0_MIN)) / 8.0
    noise = rng.normal(0.0, 1.0, n)
    aspiration = noise * (0.3 + flow)
    return derivative.astype(np.float32), (aspiration / 0.8).astype(np.float32)


def spectral_tilt(x: np.ndarray, tilt: float) -> np.ndarray:
    """Make a signal duller (``tilt`` > 0) or brighter (< 0): a high shelf.

    A Linkwitz-Riley crossover at :data:`TILT_CORNER_HZ` splits the signal into bands
    that sum back to the input; the upper band gets ``-TILT_DB * tilt`` dB. This is the
    spectral balance that vocal effort changes (loud, tense voices are bright).
    """
    if tilt == 0:
        return x.astype(np.float32)
    low_sos = signal.butter(2, TILT_CORNER_HZ, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    high_sos = signal.butter(2, TILT_CORNER_HZ, btype="highpass", fs=SAMPLE_RATE, output="sos")
    low = signal.sosfilt(low_sos, signal.sosfilt(low_sos, x))
    high = signal.sosfilt(high_sos, signal.sosfilt(high_sos, x))
    gain = 10.0 ** (-TILT_DB * tilt / 20.0)
    return (low + gain * high).astype(np.float32)


def formant_tracks(segments: list[_Segment], params: VoiceParams, *, female: bool = False) -> np.ndarray:
    """Formant frequencies F1-F5 for every :data:`BLOCK`, smoothed across phones.

    Returns
    -------
    ndarray, shape (n_blocks, 5), Hz
    """
    n = segments[-1].end
    n_blocks = int(np.ceil(n / BLOCK))
    tracks = np.zeros((n_blocks, 3))
    centres = (np.arange(n_blocks) + 0.5) * BLOCK
    for seg in segments:
        kind, formants, _ = PHONES[seg.phone]
        inside = (centres >= seg.start) & (centres < seg.end)
        if kind == "diphthong":
            frac = np.clip((centres[inside] - seg.start) / (seg.end - seg.start), 0, 1)[:, None]
            tracks[inside] = np.asarray(formants) * (1 - frac) + np.asarray(AY_END) * frac
        else:
            tracks[inside] = formants
    tracks[centres >= segments[-1].end] = PHONES[segments[-1].phone][1]
    # coarticulation: a 30 ms moving average
    width = 6
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(tracks, ((width, width), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, k], kernel, mode="same")[width:-width] for k in range(3)], axis=1)
    scale = params.formant_scale * (1.16 if female else 1.0)
    smooth = smooth * scale
    smooth[:, 0] *= params.f1_scale
    fixed = np.tile([F4_HZ * scale, F5_HZ * scale], (n_blocks, 1))
    return np.concatenate([smooth, fixed], axis=1)


def vocal_tract(excitation: np.ndarray, formants: np.ndarray, *, bandwidth_scale: float = 1.0) -> np.ndarray:
    """Filter ``excitation`` through formant resonators in cascade, updated every block.

    Parameters
    ----------
    excitation : ndarray, shape (n,)
    formants : ndarray, shape (n_blocks, k)
        Hz; one row per :data:`BLOCK` samples.
    bandwidth_scale : float
        Widens all bandwidths (breathy voices have broader formants).

    Returns
    -------
    ndarray, shape (n,), float32
    """
    out = excitation.astype(np.float64)
    n = len(out)
    for k in range(formants.shape[1]):
        bandwidth = FORMANT_BANDWIDTHS[k] * bandwidth_scale
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        freq = np.clip(formants[:, k], 50.0, 0.45 * SAMPLE_RATE)
        theta = 2.0 * np.pi * freq / SAMPLE_RATE
        a1 = -2.0 * radius * np.cos(theta)
        a2 = np.full_like(a1, radius * radius)
        gain = 1.0 + a1 + a2  # unity gain at DC
        state = np.zeros(2)
        filtered = np.empty(n)
        for block in range((n + BLOCK - 1) // BLOCK):
            lo, hi = block * BLOCK, min((block + 1) * BLOCK, n)
            row = min(block, len(freq) - 1)
            filtered[lo:hi], state = signal.lfilter([gain[row]], [1.0, a1[row], a2[row]], out[lo:hi], zi=state)
        out = filtered
    return out.astype(np.float32)


def _envelope(segments: list[_Segment], n: int, table: dict[str, float], ramp_ms: float) -> np.ndarray:
    values = np.zeros(n)
    for seg in segments:
        values[seg.start : seg.end] = table[seg.phone]
    width = max(int(ramp_ms / 1000 * SAMPLE_RATE), 1)
    kernel = np.hanning(width + 2)[1:-1]
    return np.convolve(values, kernel / kernel.sum(), mode="same")


def consonant_noise(segments: list[_Segment], n: int, rng: np.random.Generator) -> np.ndarray:
    """Bursts of stops and the frication of fricatives: band-passed noise, in place in time."""
    out = np.zeros(n)
    for seg in segments:
        if seg.phone not in NOISE_BANDS:
            continue
        low, high, level = NOISE_BANDS[seg.phone]
        length = seg.end - seg.start
        kind = PHONES[seg.phone][0]
        sos = signal.butter(2, [low, min(high, 0.49 * SAMPLE_RATE)], btype="bandpass", fs=SAMPLE_RATE, output="sos")
        noise = signal.sosfilt(sos, rng.normal(0.0, 1.0, length + 64))[64:]
        t = np.arange(length) / SAMPLE_RATE
        if kind == "stop":
            # closure, then a burst that decays into the next phone
            burst_at = int(0.6 * length)
            env = np.where(
                np.arange(length) >= burst_at, np.exp(-(np.arange(length) - burst_at) / (0.012 * SAMPLE_RATE)), 0.0
            )
        else:
            env = np.sin(np.pi * np.clip(t / (length / SAMPLE_RATE), 0, 1)) ** 0.7
        out[seg.start : seg.end] += level * noise * env / (np.std(noise) + 1e-9)
    return out


def synthesise(
    statement: int, params: VoiceParams, rng: np.random.Generator, *, female: bool = False, timing_jitter: float = 0.08
) -> Utterance:
    """Say a RAVDESS statement with a voice.

    Parameters
    ----------
    statement : int
        1 ("Kids are talking by the door") or 2 ("Dogs are sitting by the door").
    params : VoiceParams
        The voice, emotion included (:func:`emotion_voice`, :func:`perturb_voice`).
    rng : numpy.random.Generator
        Drives timing jitter, pitch drift, jitter/shimmer and all noise.
    female : bool
        Shorter vocal tract (formants x 1.16).
    timing_jitter : float
        Per-phone log-normal duration spread.

    Returns
    -------
    Utterance
        Speech at :data:`SAMPLE_RATE`, its mouth-opening track, F0 and voicing.
    """
    segments = phone_timeline(statement, tempo=params.tempo, rng=rng, jitter=timing_jitter)
    n = segments[-1].end
    f0 = f0_contour(segments, params, rng=rng)
    last = [s for s in segments if s.syllable == segments[-1].syllable]
    creak_from = int(segments[-1].end - 0.6 * (last[-1].end - last[0].start)) if params.creak > 0 else None
    pulses, aspiration = glottal_source(f0, params, rng, creak_from=creak_from)

    voicing = _envelope(segments, n, {p: VOICING_LEVEL[PHONES[p][0]] for p in PHONES}, 18.0)
    # stressed syllables louder, and the phrase gets softer towards its end
    stress = np.zeros(n)
    for seg in segments:
        stress[seg.start : seg.end] = 0.55 + 0.45 * seg.stress
    kernel = np.hanning(int(0.04 * SAMPLE_RATE))
    stress = np.convolve(stress, kernel / kernel.sum(), mode="same")
    decline = np.linspace(1.0, 0.75, n)
    voicing = voicing * stress * decline

    excitation = spectral_tilt(pulses, params.tilt) + params.breath * 0.35 * aspiration
    excitation = excitation * voicing
    formants = formant_tracks(segments, params, female=female)
    voiced_part = vocal_tract(excitation, formants, bandwidth_scale=1.0 + 1.5 * params.breath)
    noise_part = consonant_noise(segments, n, rng) * stress * decline
    speech = voiced_part / (np.sqrt(np.mean(voiced_part**2)) + 1e-9) + 0.3 * noise_part
    # fade in/out over 5 ms so the speech starts and ends without a click
    fade = int(0.005 * SAMPLE_RATE)
    speech[:fade] *= np.linspace(0, 1, fade)
    speech[-fade:] *= np.linspace(1, 0, fade)

    level = 10 ** ((SPEECH_RMS_DBFS + params.loudness_db) / 20.0)
    active = voicing > 0.3 * voicing.max()
    rms = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else np.sqrt(np.mean(speech**2))
    speech = speech * (level / (rms + 1e-12))
    # a soft limiter keeps loud voices below full scale
    speech = 0.98 * np.tanh(speech / 0.98)

    openness = _envelope(segments, n, {p: PHONES[p][2] for p in PHONES}, 50.0)
    openness = openness * np.clip(voicing / max(voicing.max(), 1e-9) * 1.3, 0.3, 1.0) * params.articulation
    step = SAMPLE_RATE // ENVELOPE_RATE
    mouth = openness[: n - n % step].reshape(-1, step).mean(axis=1) if n >= step else openness[:1]
    return Utterance(
        speech.astype(np.float32),
        np.clip(mouth, 0.0, 1.5).astype(np.float32),
        f0,
        (voicing / max(voicing.max(), 1e-9)).astype(np.float32),
    )


def room_noise(n: int, rng: np.random.Generator, *, level_dbfs: float = -66.0, sample_rate: int = 48000) -> np.ndarray:
    """Low room noise: pink-ish noise plus a faint mains hum, RMS ``level_dbfs``.

    Parameters
    ----------
    n : int
        Samples.
    rng : numpy.random.Generator
    level_dbfs : float
        RMS level (dB relative to full scale).
    sample_rate : int
        Hz (sets the hum frequency in samples).

    Returns
    -------
    ndarray, shape (n,), float32
    """
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    white = rng.normal(0.0, 1.0, n)
    # Paul Kellet's economy pink filter: -3 dB/octave above ~100 Hz
    pink = signal.lfilter(
        [0.049922035, -0.095993537, 0.050612699, -0.004408786], [1.0, -2.494956002, 2.017265875, -0.522189400], white
    )
    t = np.arange(n) / sample_rate
    hum = 0.3 * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi)) + 0.15 * np.sin(2 * np.pi * 150.0 * t)
    pink = pink / (np.std(pink) + 1e-12)
    noise = pink + hum
    noise *= 10 ** (level_dbfs / 20.0) / (np.sqrt(np.mean(noise**2)) + 1e-12)
    return noise.astype(np.float32)
