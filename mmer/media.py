"""Media files through ffmpeg: probe, audio decode, speech span, frame decode.

The ffmpeg binary is the one bundled with ``imageio-ffmpeg`` (there is no ffprobe), so
:func:`probe` reads what ``ffmpeg -i FILE`` prints. Commands are built with
``ffmpeg-python``; every ffmpeg failure is re-raised as :class:`~mmer.errors.MediaError`
naming the file and ffmpeg's own reason.

:func:`speech_span` and :func:`frame_times` are pure (arrays in, numbers out); the rest
are the small I/O edges. :func:`trim_clip` is the per-clip function of the ``trim`` stage.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import scipy.signal
import soundfile as sf

from mmer.errors import ConfigError, MediaError, NoAudioError, NoSpeechError
from mmer.io import atomic_path

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Speech span defaults, tuned on real RAVDESS speech (actors 01-18): see speech_span.
THRESHOLD_DB = -35.0
FRAME_S = 0.025
MIN_SILENCE_S = 0.25
PAD_S = 0.15
MIN_SPAN_S = 0.3
# Levels are measured above this frequency: room rumble and handling noise live below it,
# the energy of speech (even of a low male voice, in its harmonics) above it.
HIGHPASS_HZ = 100.0
# A region (after joining) counts as speech only when it lasts MIN_REGION_S and its loudest
# frame is within REGION_PEAK_DB of the clip's loudest: shorter ones are clicks, weaker ones
# before or after the utterance are breaths, lip noise and thumps (on RAVDESS every extra
# region weaker than -15 dB was one of those; parts of the sentence peak above -12 dB).
MIN_REGION_S = 0.1
REGION_PEAK_DB = 15.0
# The loudest frame must be this loud in absolute terms (dB re full scale) ...
MIN_PEAK_DBFS = -70.0
# ... and this far above the noise floor (the NOISE_PERCENTILE-th percentile of frame levels):
# a flat energy profile (hum, hiss, room tone) holds no speech. Tightly trimmed real speech
# still has 15 dB or more; white noise 1-2 dB.
MIN_DYNAMIC_RANGE_DB = 10.0
NOISE_PERCENTILE = 5.0
# Speech frames are also at least this far above the noise floor (matters in noisy clips only:
# on RAVDESS the floor is 48 dB or more below the peak).
NOISE_MARGIN_DB = 10.0
# Decoded audio this much shorter than the container says means a truncated file.
MAX_MISSING_S = 0.25
MAX_MISSING_SHARE = 0.05
# A variable-frame-rate video (phones, screen recordings) can leave gaps between frames far
# longer than its mean frame period; read_frames decodes this far past the last time asked for
# (stretches down to 4 fps; more would cost every clip decode time).
MAX_FRAME_GAP_S = 0.25

_STDERR_NOISE = (
    "at least one output file must be specified",
    "misdetection possible",
    "error opening input file ",
    "conversion failed",
)


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_cmd(*, loglevel: str = "error", copyts: bool = False) -> list[str]:
    # Global flags must precede the inputs: ffmpeg-python appends global_args at the end.
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", loglevel]
    return cmd + (["-copyts"] if copyts else [])


def _stderr_reason(stderr: bytes | str | None, path: str | Path | None = None) -> str:
    """The last meaningful line of ffmpeg's stderr, without the ``[demuxer @ 0x..]`` prefix."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    if "misdetection possible" in text:  # the container guessed from the name alone
        return "Invalid data: not a media format ffmpeg recognises"
    if "moov atom not found" in text:
        return "moov atom not found (truncated or incomplete mp4)"
    reasons = []
    for line in text.splitlines():
        line = re.sub(r"^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+", "", line.strip()).strip()
        if not line or any(noise in line.lower() for noise in _STDERR_NOISE):
            continue
        if path is not None and str(path) in line:
            continue
        reasons.append(line)
    reason = reasons[-1] if reasons else "ffmpeg failed without a message"
    reason = reason.removeprefix("Error opening input files: ").removeprefix("Error opening input: ")
    if reason == "End of file":  # cut off inside the container's header
        return "End of file inside the header (truncated file)"
    return reason


def _run(stream: ffmpeg.nodes.OutputStream, path: str | Path, what: str, **cmd_args) -> tuple[bytes, bytes]:
    """Run an ffmpeg-python command; an ffmpeg failure becomes a MediaError naming ``path``."""
    try:
        return stream.run(cmd=_ffmpeg_cmd(**cmd_args), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as err:
        raise MediaError(f"{path}: cannot {what}: {_stderr_reason(err.stderr, path)}") from err
    except OSError as err:
        raise MediaError(f"{path}: cannot run ffmpeg to {what}: {err}") from err


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says about a media file (first video and first audio stream).

    Attributes
    ----------
    path : str
    duration_s : float or None
        Container duration (None when ffmpeg does not know it).
    start_s : float
        Container start time.
    has_video, has_audio : bool
        A video stream (cover art excluded) / an audio stream is present.
    width, height : int or None
        Coded frame size of the video stream.
    fps : float or None
        Frame rate of the video stream (``fps``, else ``tbr``).
    rotation : float
        Display rotation in degrees (phone videos); ffmpeg applies it when decoding.
    video_codec, audio_codec : str or None
    sample_rate : int or None
        Audio sample rate in Hz.
    channels : str or None
        Audio channel layout as ffmpeg names it (``mono``, ``stereo``, ``5.1`` ...).
    """

    path: str
    duration_s: float | None
    start_s: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: float = 0.0
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: str | None = None

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of decoded frames, after the display rotation."""
        if self.width is None or self.height is None:
            return None
        if round(abs(self.rotation)) % 180 == 90:
            return self.height, self.width
        return self.width, self.height


_DURATION_RE = re.compile(r"Duration:\s*(N/A|(\d+):(\d+):(\d+(?:\.\d+)?))(?:,\s*start:\s*(-?\d+(?:\.\d+)?))?")
_STREAM_RE = re.compile(r"Stream #\d+:\d+\S*: (Video|Audio): (\w+)(.*)")
_SIZE_RE = re.compile(r"\b(\d{1,5})x(\d{1,5})\b")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")
_RATE_RE = re.compile(r"(\d+) Hz(?:,\s*([^,]+))?")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")


def parse_probe(text: str, path: str | Path) -> MediaInfo:
    """Parse the stderr of ``ffmpeg -i FILE`` (see :func:`probe`)."""
    if "Input #0" not in text:
        raise MediaError(f"{path}: unreadable media file: {_stderr_reason(text, path)}")
    if re.search(r"stream \d+, offset 0x[0-9a-f]+: partial file", text):
        # the header survived but the media data it points to is cut off: what is left looks
        # like a file without one of its streams, and would fail as that
        raise MediaError(f"{path}: truncated file: its streams' data end before the header says (ffmpeg: partial file)")
    duration_s, start_s = None, 0.0
    match = _DURATION_RE.search(text)
    if match:
        if match.group(1) != "N/A":
            duration_s = int(match.group(2)) * 3600 + int(match.group(3)) * 60 + float(match.group(4))
        if match.group(5):
            start_s = float(match.group(5))
    video: dict = {}
    audio: dict = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stream = _STREAM_RE.search(line)
        if not stream:
            continue
        kind, codec, rest = stream.groups()
        if kind == "Video" and not video and "attached pic" not in rest:
            size = _SIZE_RE.search(rest)
            rates = {unit: float(value) * (1000 if k else 1) for value, k, unit in _FPS_RE.findall(rest)}
            rotation = 0.0
            for side in lines[i + 1 : i + 8]:  # side data follows its stream line
                if _STREAM_RE.search(side):
                    break
                if found := _ROTATION_RE.search(side):
                    rotation = float(found.group(1))
            video = {
                "video_codec": codec,
                "width": int(size.group(1)) if size else None,
                "height": int(size.group(2)) if size else None,
                "fps": rates.get("fps") or rates.get("tbr"),
                "rotation": rotation,
            }
        elif kind == "Audio" and not audio:
            rate = _RATE_RE.search(rest)
            audio = {
                "audio_codec": codec,
                "sample_rate": int(rate.group(1)) if rate else None,
                "channels": rate.group(2).strip() if rate and rate.group(2) else None,
            }
    if not video and not audio:
        raise MediaError(f"{path}: unreadable media file: no audio or video stream")
    return MediaInfo(
        path=str(path), duration_s=duration_s, start_s=start_s, has_video=bool(video), has_audio=bool(audio), **video, **audio
    )


def probe(path: str | Path) -> MediaInfo:
    """Streams, sizes and duration of a media file, from ``ffmpeg -i``'s report.

    Parameters
    ----------
    path : str or Path
        Any file ffmpeg can open (.mp4, .wav, .flac ...).

    Returns
    -------
    MediaInfo

    Raises
    ------
    MediaError
        The file is missing, empty, or ffmpeg cannot read it (random bytes, a truncated mp4
        whose moov atom is lost ...); the message names the file and ffmpeg's reason.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: unreadable media file: empty file (0 bytes)")
    try:
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MediaError(f"{path}: cannot run ffmpeg to probe: {err}") from err
    return parse_probe(done.stderr.decode("utf-8", "replace"), path)


# --------------------------------------------------------------------------- audio


def read_audio(path: str | Path, *, sample_rate: int = SAMPLE_RATE, info: MediaInfo | None = None) -> np.ndarray:
    """Decode the first audio stream as mono float32 at ``sample_rate`` (one ffmpeg run).

    Parameters
    ----------
    path : str or Path
        Media file with an audio stream.
    sample_rate : int
        Output rate in Hz; ffmpeg resamples and averages the channels.
    info : MediaInfo, optional
        The file's :func:`probe` result when the caller already has it.

    Returns
    -------
    ndarray, float32, shape (n_samples,)
        Samples in [-1, 1].

    Raises
    ------
    NoAudioError
        The file has no audio stream.
    MediaError
        The file is unreadable, or its audio stops well before the container's duration
        (a truncated file).
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    info = info or probe(path)
    if not info.has_audio:
        raise NoAudioError(f"{path}: no audio stream")
    stream = ffmpeg.input(str(path)).output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, map="0:a:0", vn=None)
    out, _ = _run(stream, path, "decode audio")
    signal = np.frombuffer(out, dtype="<f4").astype(np.float32)
    if info.duration_s:
        decoded_s = len(signal) / sample_rate
        missing_s = info.duration_s - decoded_s
        if missing_s > max(MAX_MISSING_S, MAX_MISSING_SHARE * info.duration_s):
            raise MediaError(
                f"{path}: truncated audio: decoded {decoded_s:.2f} s of the {info.duration_s:.2f} s the container declares"
            )
    if len(signal) == 0:
        raise NoAudioError(f"{path}: audio stream holds no samples")
    return signal


def write_wav(path: str | Path, signal: np.ndarray, sample_rate: int) -> None:
    """Write mono audio as 16-bit PCM wav, atomically (a temporary file renamed on success).

    Parameters
    ----------
    path : str or Path
        Output .wav file; its folder is created.
    signal : ndarray, shape (n_samples,)
        Float samples in [-1, 1] (clipped).
    sample_rate : int
    """
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ConfigError(f"{path}: write_wav needs mono audio of shape (n,), not {signal.shape}")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(signal, -1.0, 1.0), int(sample_rate), subtype="PCM_16", format="WAV")


# --------------------------------------------------------------------------- speech span


def highpass(signal: np.ndarray, sample_rate: int, *, cutoff_hz: float = HIGHPASS_HZ) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth high-pass (removes rumble below ``cutoff_hz``).

    Returns
    -------
    ndarray, float64, shape (n_samples,)
    """
    signal = np.asarray(signal, dtype=np.float64)
    if cutoff_hz <= 0 or len(signal) < 16:
        return signal
    sos = scipy.signal.butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, signal, padlen=min(len(signal) - 1, 3 * 2 * len(sos)))


def frame_levels_db(signal: np.ndarray, sample_rate: int, *, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames in dB re full scale.

    The last partial frame is kept (zero-padded). Digital silence gives -200 dB.

    Returns
    -------
    ndarray, float64, shape (n_frames,)
    """
    frame = max(1, int(round(frame_s * sample_rate)))
    n_frames = max(1, math.ceil(len(signal) / frame))
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(signal)] = signal
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) frame index pairs of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def speech_span(
    signal: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = THRESHOLD_DB,
    frame_s: float = FRAME_S,
    min_silence_s: float = MIN_SILENCE_S,
    pad_s: float = PAD_S,
) -> tuple[float, float]:
    """The span from the first to the last speech region of a clip, padded.

    The signal is high-passed at ``HIGHPASS_HZ`` (room rumble and thumps), cut into frames
    of ``frame_s`` (not overlapping), and the RMS level of each frame is taken in dB. Frames
    above ``threshold_db`` relative to the clip's loudest frame — and at least
    ``NOISE_MARGIN_DB`` above the noise floor, which only matters in noisy clips — are
    speech. Runs of speech frames separated by less than ``min_silence_s`` are joined (pauses
    inside an utterance do not split it). A joined region counts only when it lasts
    ``MIN_REGION_S`` (shorter: a click) and its loudest frame is within ``REGION_PEAK_DB``
    of the clip's loudest (weaker: a breath, a lip smack, a thump before or after the
    utterance). The span runs from the first to the last region, padded by ``pad_s`` on
    both sides and clamped to the clip.

    The defaults were tuned by eye on plots of real RAVDESS speech (actors 01-18): they cut
    the room noise at both ends and keep soft onsets and the decaying end of the sentence.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
        Mono audio, float in [-1, 1].
    sample_rate : int
        Hz.
    threshold_db : float
        Speech threshold in dB relative to the loudest frame (negative).
    frame_s : float
        Frame length in seconds.
    min_silence_s : float
        Shortest silence that separates two speech regions.
    pad_s : float
        Seconds kept before the first and after the last speech frame.

    Returns
    -------
    (start_s, end_s) : tuple of float
        Seconds from the start of ``signal``.

    Raises
    ------
    ConfigError
        A parameter is out of range.
    NoSpeechError
        The clip is empty, digital silence or too quiet (loudest frame below
        ``MIN_PEAK_DBFS``), has a flat energy profile (loudest frame less than
        ``MIN_DYNAMIC_RANGE_DB`` above the noise floor: noise only), or holds only clicks.
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    if not threshold_db < 0:
        raise ConfigError(f"trim.threshold_db must be negative (dB below the loudest frame), not {threshold_db}")
    if not 0 < frame_s <= 1:
        raise ConfigError(f"trim.frame_s must be in (0, 1] seconds, not {frame_s}")
    if min_silence_s < 0 or pad_s < 0:
        raise ConfigError(f"trim.min_silence_s ({min_silence_s}) and trim.pad_s ({pad_s}) must not be negative")
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ConfigError(f"speech_span needs mono audio of shape (n,), not {signal.shape}")
    if len(signal) == 0:
        raise NoSpeechError("no speech: the audio is empty")
    duration_s = len(signal) / sample_rate
    levels = frame_levels_db(highpass(signal, sample_rate), sample_rate, frame_s=frame_s)
    peak_db = float(levels.max())
    if peak_db < MIN_PEAK_DBFS:
        what = "digital silence" if peak_db <= -199 else f"too quiet (loudest frame {peak_db:.1f} dBFS < {MIN_PEAK_DBFS:g})"
        raise NoSpeechError(f"no speech: the audio is {what}")
    floor_db = float(np.percentile(levels, NOISE_PERCENTILE))
    if peak_db - floor_db < MIN_DYNAMIC_RANGE_DB:
        raise NoSpeechError(
            f"no speech: flat energy (loudest frame only {peak_db - floor_db:.1f} dB above the noise floor, "
            f"< {MIN_DYNAMIC_RANGE_DB:g} dB): noise only"
        )
    hop_s = max(1, int(round(frame_s * sample_rate))) / sample_rate
    regions = _runs(levels > max(peak_db + threshold_db, floor_db + NOISE_MARGIN_DB))
    max_gap = int(round(min_silence_s / hop_s))
    joined: list[list[int]] = []
    for start, stop in regions:
        if joined and start - joined[-1][1] < max_gap:
            joined[-1][1] = stop
        else:
            joined.append([start, stop])
    min_frames = max(1, int(round(MIN_REGION_S / hop_s)))
    speech = [
        (start, stop)
        for start, stop in joined
        if stop - start >= min_frames and levels[start:stop].max() >= peak_db - REGION_PEAK_DB
    ]
    if not speech:
        raise NoSpeechError(
            f"no speech: only clicks shorter than {MIN_REGION_S:g} s above {threshold_db:g} dB re the loudest frame"
        )
    start_s = max(0.0, speech[0][0] * hop_s - pad_s)
    end_s = min(duration_s, speech[-1][1] * hop_s + pad_s)
    return start_s, end_s


# --------------------------------------------------------------------------- trim stage


def _digital_silence(signal: np.ndarray) -> bool:
    return not np.any(np.abs(signal) > 1.0 / 65536)


def trim_clip(
    path: str | Path,
    wav_out: str | Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    threshold_db: float = THRESHOLD_DB,
    frame_s: float = FRAME_S,
    min_silence_s: float = MIN_SILENCE_S,
    pad_s: float = PAD_S,
    min_span_s: float = MIN_SPAN_S,
) -> dict:
    """Per-clip function of the ``trim`` stage: find the speech span, write its audio.

    A clip with audio is decoded once; the span's audio is written to ``wav_out`` as
    ``sample_rate`` mono 16-bit wav. A video without sound — no audio stream, or (as in the
    genuine RAVDESS video-only files, modality 02) an audio stream of digital silence — has
    the whole clip as its span and no wav. Digital silence in a file without video is a
    failure (:class:`NoSpeechError`), as is a noise-only track.

    Parameters
    ----------
    path : str or Path
        .mp4, .wav, .flac or anything else ffmpeg reads.
    wav_out : str or Path
        Where the span's audio goes (written atomically; not written for silent video).
    sample_rate, threshold_db, frame_s, min_silence_s, pad_s
        See :func:`read_audio` and :func:`speech_span` (params ``trim.*``).
    min_span_s : float
        Shortest usable span in seconds.

    Returns
    -------
    dict
        ``start_s``, ``end_s`` (the span, seconds from the start of the clip),
        ``duration_s`` (of the whole clip) and ``has_audio``.

    Raises
    ------
    MediaError
        Unreadable or truncated file (the message names it).
    NoSpeechError
        No speech span, or one shorter than ``min_span_s``.
    """
    info = probe(path)
    signal = read_audio(path, sample_rate=sample_rate, info=info) if info.has_audio else None
    if signal is None or (info.has_video and _digital_silence(signal)):
        duration_s = info.duration_s
        if duration_s is None and signal is not None:
            duration_s = len(signal) / sample_rate
        if not duration_s:
            raise MediaError(f"{path}: video without sound and of unknown duration")
        logger.debug("%s: video without sound: the span is the whole clip", path)
        return {"start_s": 0.0, "end_s": round(duration_s, 4), "duration_s": round(duration_s, 4), "has_audio": False}
    try:
        start_s, end_s = speech_span(
            signal, sample_rate, threshold_db=threshold_db, frame_s=frame_s, min_silence_s=min_silence_s, pad_s=pad_s
        )
    except NoSpeechError as err:
        raise NoSpeechError(f"{path}: {err}") from err
    if end_s - start_s < min_span_s:
        raise NoSpeechError(
            f"{path}: too short after trimming: span {end_s - start_s:.2f} s shorter than trim.min_span_s={min_span_s:g}"
        )
    first, last = int(round(start_s * sample_rate)), int(round(end_s * sample_rate))
    write_wav(wav_out, signal[first:last], sample_rate)
    return {
        "start_s": round(start_s, 4),
        "end_s": round(end_s, 4),
        "duration_s": round(len(signal) / sample_rate, 4),
        "has_audio": True,
    }


# --------------------------------------------------------------------------- frames


def frame_times(start_s: float, end_s: float, n: int) -> np.ndarray:
    """``n`` times evenly spaced inside a span: the centres of ``n`` equal segments.

    Returns
    -------
    ndarray, float64, shape (n,)
    """
    if n < 1:
        raise ConfigError(f"the number of frames must be at least 1, not {n}")
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"span [{start_s}, {end_s}] s is not a valid span")
    return start_s + (np.arange(n) + 0.5) * (end_s - start_s) / n


_PTS_RE = re.compile(r"Parsed_showinfo.*?\bn:\s*\d+.*?\bpts_time:\s*(-?[\d.]+(?:e[-+]?\d+)?)")


def read_frames(
    path: str | Path, times_s: np.ndarray | list[float], *, max_side: int | None = None, info: MediaInfo | None = None
) -> np.ndarray:
    """The frames nearest the requested times, decoded in one ffmpeg run, never to disk.

    ffmpeg seeks (input ``-ss``, to the keyframe before) to just before the first time,
    decodes up to just after the last, and passes on only, for each requested time, the
    frames within one frame period before it and the first frame at or after it (a
    ``select`` filter); ``showinfo`` reports their timestamps and the nearest frame is kept
    for each time. With a constant frame rate that is the nearest frame of the clip; with a
    variable one (gaps longer than the mean period) it may be the first frame after the
    time. Times past the last frame get the last frame.

    Parameters
    ----------
    path : str or Path
        A file with a video stream.
    times_s : array-like of float, shape (k,)
        Seconds from the start of the clip (as spans from :func:`trim_clip` are), in any
        order; repeats allowed.
    max_side : int, optional
        Scale frames down (keeping the aspect ratio) so the longer side is at most this.
    info : MediaInfo, optional
        The file's :func:`probe` result when the caller already has it.

    Returns
    -------
    ndarray, uint8, shape (k, H, W, 3)
        RGB frames in the order of ``times_s``.

    Raises
    ------
    MediaError
        No video stream, a decode failure, or no frame near a requested time (a truncated
        file).
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if len(times) == 0 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ConfigError(f"{path}: frame times must be a non-empty list of seconds >= 0, not {times.tolist()}")
    if max_side is not None and max_side < 2:
        raise ConfigError(f"max_side must be at least 2 pixels, not {max_side}")
    info = info or probe(path)
    if not info.has_video or info.frame_size is None:
        raise MediaError(f"{path}: no video stream")
    period = 1.0 / (info.fps or 25.0)
    # times count from the start of the clip; -copyts below keeps the file's own timestamps
    last_s = (info.duration_s or float(times.max()) + period) - period
    wanted = info.start_s + np.clip(times, 0.0, max(0.0, last_s))
    width, height = info.frame_size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    # -ss and -t count from the start of the file, select and showinfo in its timestamps
    seek_s = max(0.0, float(wanted.min()) - info.start_s - 2 * period)
    read_s = float(wanted.max()) - info.start_s - seek_s + 3 * period + MAX_FRAME_GAP_S
    # prev_t is the previous decoded frame's time (NAN for the first: not(gte(NAN, T)) is 1)
    near = "+".join(f"gte(t,{t - period:.6f})*not(gte(prev_t,{t:.6f}))" for t in np.unique(wanted))
    video = ffmpeg.input(str(path), ss=f"{seek_s:.6f}", t=f"{read_s:.6f}").video.filter("select", near).filter("showinfo")
    if (width, height) != info.frame_size:
        video = video.filter("scale", width, height, flags="area")
    stream = video.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
    out, err = _run(stream, path, "decode frames", loglevel="info", copyts=True)
    pts = np.array([float(m) for m in _PTS_RE.findall(err.decode("utf-8", "replace"))])
    frame_bytes = width * height * 3
    if len(out) % frame_bytes or len(out) // frame_bytes != len(pts):
        raise MediaError(
            f"{path}: cannot decode frames: {len(out) / frame_bytes:.1f} frames of {width}x{height} for {len(pts)} timestamps"
        )
    frames = np.frombuffer(out, dtype=np.uint8).reshape(len(pts), height, width, 3)
    picked = np.empty((len(wanted), height, width, 3), dtype=np.uint8)
    for i, t in enumerate(wanted):
        gaps = np.abs(pts - t) if len(pts) else np.array([np.inf])
        # no frame within a period, but one after: a sparse stretch of a variable frame rate
        sparse = bool(np.any((pts >= t - 1e-6) & (pts - t <= MAX_FRAME_GAP_S + period)))
        if gaps.min() > period and not sparse:
            reached = f"decoded frames end at {pts.max() - info.start_s:.2f} s" if len(pts) else "no frame decoded there"
            raise MediaError(f"{path}: no video frame near {times[i]:.2f} s ({reached}; truncated file?)")
        picked[i] = frames[int(np.argmin(gaps))]
    return picked


def read_all_frames(path: str | Path, *, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a clip and its timestamp (one ffmpeg run; for benchmarks and annotation).

    Returns
    -------
    frames : ndarray, uint8, shape (n, H, W, 3)
    times_s : ndarray, float64, shape (n,)
        Seconds from the start of the clip.
    """
    info = probe(path)
    if not info.has_video or info.frame_size is None:
        raise MediaError(f"{path}: no video stream")
    width, height = info.frame_size
    video = ffmpeg.input(str(path)).video.filter("showinfo")
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        video = video.filter("scale", width, height, flags="area")
    stream = video.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
    out, err = _run(stream, path, "decode frames", loglevel="info", copyts=True)
    pts = np.array([float(m) for m in _PTS_RE.findall(err.decode("utf-8", "replace"))])
    n = len(out) // (width * height * 3)
    if n == 0 or n != len(pts):
        raise MediaError(f"{path}: cannot decode frames: {n} frames for {len(pts)} timestamps")
    return np.frombuffer(out, dtype=np.uint8).reshape(n, height, width, 3), pts - info.start_s
