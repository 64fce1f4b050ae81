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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import soundfile as sf

from mmer.config import SpanParams
from mmer.errors import ConfigError, MediaError, NoAudioError
from mmer.files import atomic_path, dangling_link

# what a folder is searched for; a file named on the command line is tried whatever its suffix
# (the containers ffmpeg demuxes; files with other suffixes are skipped and named in a warning)
VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".qt",
    ".avi",
    ".mkv",
    ".webm",
    ".mpg",
    ".mpeg",
    ".mpe",
    ".m2v",
    ".ts",
    ".mts",
    ".m2ts",
    ".vob",
    ".flv",
    ".f4v",
    ".wmv",
    ".asf",
    ".3gp",
    ".3g2",
    ".ogv",
    ".mxf",
    ".dv",
    ".divx",
    ".nut",
)
AUDIO_SUFFIXES = (
    ".wav",
    ".wave",
    ".w64",
    ".rf64",
    ".flac",
    ".mp3",
    ".mp2",
    ".m4a",
    ".m4b",
    ".aac",
    ".ogg",
    ".oga",
    ".opus",
    ".spx",
    ".wma",
    ".aiff",
    ".aif",
    ".aifc",
    ".amr",
    ".caf",
    ".au",
    ".snd",
    ".ac3",
    ".eac3",
    ".mka",
    ".ape",
    ".wv",
    ".tta",
)
MEDIA_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES

logger = logging.getLogger(__name__)

# Decoded audio this much shorter than the container says means a truncated file.
MAX_MISSING_S = 0.25
# The mono mix of two channels this much quieter than the louder channel (-26 dB) means they
# cancel (opposite phase); channels quieter than MIN_CHANNEL_DBFS are silence, not cancellation.
CANCEL_RATIO = 0.05
MIN_CHANNEL_DBFS = -70.0
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
    audio_streams : tuple of (str, str or None)
        Codec and channel layout of every audio stream, in order (several: a second
        language, a commentary, a second microphone).
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
    audio_streams: tuple[tuple[str, str | None], ...] = ()

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
_SIZE_RE = re.compile(r"\b([1-9]\d{0,4})x(\d{1,5})\b")  # not a codec tag such as 0x0002 (MPEG-TS)
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
    audio_streams: list[tuple[str, str | None]] = []
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
        elif kind == "Audio":
            rate = _RATE_RE.search(rest)
            audio_streams.append((codec, rate.group(2).strip() if rate and rate.group(2) else None))
            if audio:
                continue
            audio = {
                "audio_codec": codec,
                "sample_rate": int(rate.group(1)) if rate else None,
                "channels": rate.group(2).strip() if rate and rate.group(2) else None,
            }
    if not video and not audio:
        raise MediaError(f"{path}: unreadable media file: no audio or video stream")
    return MediaInfo(
        path=str(path),
        duration_s=duration_s,
        start_s=start_s,
        has_video=bool(video),
        has_audio=bool(audio),
        **video,
        **audio,
        audio_streams=tuple(audio_streams),
    )


def _checked_file(path: str | Path) -> Path:
    """``path`` as a Path, after checking it is a file ffmpeg can be given (MediaError naming it)."""
    path = Path(path)
    if broken := dangling_link(path):
        raise MediaError(f"{path}: {broken}")
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: unreadable media file: empty file (0 bytes)")
    return path


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
    path = _checked_file(path)
    try:
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MediaError(f"{path}: cannot run ffmpeg to probe: {err}") from err
    return parse_probe(done.stderr.decode("utf-8", "replace"), path)


# What read_frames needs of a probe, as the trim stage records it in its spans table (so the
# face_crops stage need not run ffmpeg once more per clip to probe it again)
VIDEO_FACTS = ("video_fps", "frame_width", "frame_height", "media_start_s", "media_duration_s")


def video_facts(info: MediaInfo) -> dict[str, float | int | None]:
    """The probe facts :func:`read_frames` uses, as flat values (None: unknown or no video).

    ``frame_width`` and ``frame_height`` are of the decoded frames (after the display rotation).
    """
    size = info.frame_size if info.has_video else None
    return {
        "video_fps": info.fps if size else None,
        "frame_width": size[0] if size else None,
        "frame_height": size[1] if size else None,
        "media_start_s": info.start_s,
        "media_duration_s": info.duration_s,
    }


def _known(value: object) -> bool:
    return value is not None and value == value and value != ""  # NaN != NaN; an empty cell


def info_from_facts(path: str | Path, facts: Mapping[str, object]) -> MediaInfo | None:
    """The :class:`MediaInfo` of :func:`video_facts` (values as numbers or as the strings of a
    table), enough for :func:`read_frames`; None when the facts are missing or say no video.

    The audio fields are not recorded: ``has_audio`` is False.
    """
    if not all(_known(facts.get(name)) for name in ("frame_width", "frame_height", "media_start_s")):
        return None
    fps, duration = facts.get("video_fps"), facts.get("media_duration_s")
    return MediaInfo(
        path=str(path),
        duration_s=float(duration) if _known(duration) else None,  # type: ignore[arg-type]
        start_s=float(facts["media_start_s"]),  # type: ignore[arg-type]
        has_video=True,
        has_audio=False,
        width=int(float(facts["frame_width"])),  # type: ignore[arg-type]
        height=int(float(facts["frame_height"])),  # type: ignore[arg-type]
        fps=float(fps) if _known(fps) else None,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- audio


def read_audio(
    path: str | Path,
    *,
    sample_rate: int = SpanParams.sample_rate,
    info: MediaInfo | None = None,
    first_stream: np.ndarray | None = None,
) -> np.ndarray:
    """Decode the audio as mono float32 at ``sample_rate``: the first stream, or the first that is not silent.

    A file with several audio streams whose first is silent (below ``MIN_CHANNEL_DBFS``: a
    muted track, an empty second-language slot) gets the first stream that is not, with a
    warning naming every stream decoded and its level; when all are silent the first is
    returned (the caller reports the silence).

    Parameters
    ----------
    path : str or Path
        Media file with an audio stream.
    sample_rate : int
        Output rate in Hz; ffmpeg resamples and averages the channels.
    info : MediaInfo, optional
        The file's :func:`probe` result when the caller already has it.
    first_stream : ndarray, optional
        The first audio stream already decoded as below (:func:`probe_and_read_audio`).

    Returns
    -------
    ndarray, float32, shape (n_samples,)
        Samples in [-1, 1].

    Raises
    ------
    NoAudioError
        The file has no audio stream.
    MediaError
        The file is unreadable, has non-finite samples, or its audio stops well before the
        container's duration (a truncated file).
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    info = info or probe(path)
    if not info.has_audio:
        raise NoAudioError(f"{path}: no audio stream")
    streams = info.audio_streams or ((info.audio_codec or "?", info.channels),)
    first = _decode_audio_stream(path, 0, streams[0][1], sample_rate) if first_stream is None else first_stream
    signal = first
    if len(streams) > 1 and level_dbfs(signal) < MIN_CHANNEL_DBFS:
        levels = [level_dbfs(signal)]
        for number in range(1, len(streams)):
            other = _decode_audio_stream(path, number, streams[number][1], sample_rate)
            levels.append(level_dbfs(other))
            if levels[-1] >= MIN_CHANNEL_DBFS:
                signal = other
                break
        found = ", ".join(
            f"{number} ({codec}, {channels or '?'}): {'silent' if level < MIN_CHANNEL_DBFS else f'{level:.0f} dBFS'}"
            for number, ((codec, channels), level) in enumerate(zip(streams, levels))
        )
        if levels[-1] >= MIN_CHANNEL_DBFS:
            logger.warning("%s: audio stream 0 is silent; stream %d is used (%s)", path, len(levels) - 1, found)
        else:
            logger.warning("%s: all %d audio streams are silent (%s)", path, len(streams), found)
            signal = first
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


def probe_and_read_audio(
    path: str | Path, *, sample_rate: int = SpanParams.sample_rate
) -> tuple[MediaInfo, np.ndarray | None]:
    """:func:`probe` and :func:`read_audio` (None without an audio stream), in one ffmpeg run where possible.

    The run that decodes the first audio stream also prints what ``ffmpeg -i`` prints, so a
    file whose first audio stream is mono or stereo needs no probe of its own (a process start
    and a header parse fewer). Anything else (no audio, another channel layout, any ffmpeg
    failure) takes the two runs of :func:`probe` and :func:`read_audio`, which also word the
    errors. The info and the samples are the same either way.

    Raises
    ------
    MediaError, NoAudioError
        As :func:`probe` and :func:`read_audio`.
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    quick = _probe_with_first_audio_stream(_checked_file(path), sample_rate)
    if quick is None:
        info = probe(path)
        return info, (read_audio(path, sample_rate=sample_rate, info=info) if info.has_audio else None)
    info, first = quick
    return info, read_audio(path, sample_rate=sample_rate, info=info, first_stream=first)


def _probe_with_first_audio_stream(path: Path, sample_rate: int) -> tuple[MediaInfo, np.ndarray] | None:
    """The :class:`MediaInfo` and the first audio stream of a file whose first audio stream is
    mono or stereo, from one ffmpeg run; None otherwise (or when ffmpeg fails)."""
    # no -ac: a mono or stereo stream comes out as it is, as with the -ac 1 or 2 of _decode_audio_stream
    cmd = [*_ffmpeg_cmd(loglevel="info"), "-nostats", "-i", str(path), "-map", "0:a:0", "-vn"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-ar", str(sample_rate), "pipe:"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0 or "Output #0" not in text:
        return None
    try:
        info = parse_probe(text[: text.index("Output #0")], path)
    except MediaError:
        return None
    if not info.has_audio or not info.audio_streams or info.audio_streams[0][1] not in ("mono", "stereo"):
        return None
    n_channels = 1 if info.audio_streams[0][1] == "mono" else 2
    if len(done.stdout) % (4 * n_channels):
        return None
    signal = np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)
    if not np.isfinite(signal).all():
        raise MediaError(f"{path}: non-finite samples (NaN or Inf) in the audio")
    if n_channels == 2:
        signal = mono_downmix(signal.reshape(-1, 2), source=path)
    return info, signal


def level_dbfs(signal: np.ndarray) -> float:
    """RMS level of a signal in dB re full scale (-200 for digital silence or no samples)."""
    if len(signal) == 0:
        return -200.0
    rms = float(np.sqrt(np.mean(np.asarray(signal, dtype=np.float64) ** 2)))
    return 20.0 * math.log10(max(rms, 1e-10))


def _decode_audio_stream(path: str | Path, number: int, channels: str | None, sample_rate: int) -> np.ndarray:
    """Audio stream ``number`` of a file as mono float32 (two channels mixed by :func:`mono_downmix`)."""
    n_channels = 1 if (channels or "mono").split()[0] in ("mono", "1") else 2
    stream = ffmpeg.input(str(path)).output(
        "pipe:", format="f32le", acodec="pcm_f32le", ac=n_channels, ar=sample_rate, map=f"0:a:{number}", vn=None
    )
    out, _ = _run(stream, path, "decode audio")
    signal = np.frombuffer(out, dtype="<f4").astype(np.float32)
    if not np.isfinite(signal).all():
        raise MediaError(f"{path}: non-finite samples (NaN or Inf) in the audio")
    if n_channels == 2:
        signal = mono_downmix(signal.reshape(-1, 2), source=path)
    return signal


def mono_downmix(channels: np.ndarray, *, source: str | Path = "audio") -> np.ndarray:
    """The mean of two channels, or one channel when the two cancel in the mean.

    Stereo whose channels are in opposite phase (a miswired microphone, some phone recordings)
    averages to near silence: then the louder channel is used, with a warning.

    Parameters
    ----------
    channels : ndarray, float32, shape (n_samples, 2)
    source : str or Path
        Named in the warning.
    """
    mean = channels.mean(axis=1)
    levels = np.sqrt(np.mean(channels.astype(np.float64) ** 2, axis=0))
    if (
        levels.max() > 10 ** (MIN_CHANNEL_DBFS / 20)
        and np.sqrt(np.mean(mean.astype(np.float64) ** 2)) < CANCEL_RATIO * levels.max()
    ):
        louder = int(np.argmax(levels))
        logger.warning(
            "%s: the stereo channels cancel in the mono mix (opposite phase): channel %d used", source, louder
        )
        return np.ascontiguousarray(channels[:, louder])
    return mean.astype(np.float32)


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


# --------------------------------------------------------------------------- trim stage


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
    path: str | Path,
    times_s: np.ndarray | list[float],
    *,
    max_side: int | None = None,
    info: MediaInfo | None = None,
    threads: int = 0,
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
    threads : int
        Decoder threads; 0 lets ffmpeg choose (one per core: fastest for one clip alone). A
        pool that runs one worker per core decodes faster with 1: the cores are busy anyway,
        and frame threading costs about 15-25% more CPU per clip (docs/scaling.md). The
        frames are the same either way.

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
    if threads < 0:
        raise ConfigError(f"threads must be 0 (ffmpeg's choice) or more, not {threads}")
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
    size = (width, height) if (width, height) != info.frame_size else None
    # -ss and -t count from the start of the file, select and showinfo in its timestamps
    seek_s = max(0.0, float(wanted.min()) - info.start_s - 2 * period)
    read_s = float(wanted.max()) - info.start_s - seek_s + 3 * period + MAX_FRAME_GAP_S
    window = (path, seek_s, read_s, size or info.frame_size, size is not None, threads)
    # first the one frame nearest each time (about 1.1 frames per time to convert to RGB and
    # pipe instead of 2); where the frames are not evenly spaced (a variable frame rate) the
    # frame it picks may not be the nearest of the clip, so then every candidate is decoded
    if len(np.unique(wanted)) <= MAX_NEAREST_TIMES:
        frames, pts = _decode_selected(*window, _nearest_expr(wanted, NEAREST_HALF_WINDOW * period))
        chosen = _nearest_indices(pts, wanted)
        if len(pts) and np.all(np.abs(pts[chosen] - wanted) <= NEAREST_HALF_WINDOW * period - NEAR_TIE_S):
            return frames[chosen]
        logger.debug("%s: frames not evenly spaced near the times asked for: decoding every candidate", path)
    frames, pts = _decode_selected(*window, _candidates_expr(wanted, period))
    for i, t in enumerate(wanted):
        gaps = np.abs(pts - t) if len(pts) else np.array([np.inf])
        # no frame within a period, but one after: a sparse stretch of a variable frame rate
        sparse = bool(np.any((pts >= t - 1e-6) & (pts - t <= MAX_FRAME_GAP_S + period)))
        if gaps.min() > period and not sparse:
            reached = (
                f"decoded frames end at {pts.max() - info.start_s:.2f} s" if len(pts) else "no frame decoded there"
            )
            raise MediaError(f"{path}: no video frame near {times[i]:.2f} s ({reached}; truncated file?)")
    return frames[_nearest_indices(pts, wanted)]


# The fast path of read_frames passes, for each time, the frames less than this many frame
# periods before it and the first frame at or after it when that one is nearer: with evenly
# spaced frames (up to a 20% error in the stated frame rate) the nearest frame is among them.
NEAREST_HALF_WINDOW = 0.6
# ffmpeg's expression parser runs out of memory on the fast path's select for 64 times (the
# candidates' select, a third as long, still passes 96): more times than this take the latter
MAX_NEAREST_TIMES = 32
# near-ties between two frames (within the 6 decimals of the select expression and of the
# timestamps showinfo prints) pass both frames on; the nearest is then chosen in Python
NEAR_TIE_S = 1e-4


def _nearest_expr(wanted: np.ndarray, half_s: float) -> str:
    """A ``select`` expression passing, per time T, the frames in [T - half_s, T) and the first
    frame at or after T when it is nearer than the frame before it (or no frame was in
    [T - half_s, T)). ``prev_t`` is the previous decoded frame's time (NAN for the first:
    comparisons with NAN are 0)."""
    terms = []
    for t in np.unique(wanted):
        before = f"gte(t,{t - half_s:.6f})*lt(t,{t:.6f})"
        nearer = f"lt(t-{t:.6f},{t:.6f}-prev_t+{NEAR_TIE_S})+not(gte(prev_t,{t - half_s:.6f}))"
        terms.append(f"{before}+gte(t,{t:.6f})*not(gte(prev_t,{t:.6f}))*({nearer})")
    return "+".join(terms)


def _candidates_expr(wanted: np.ndarray, period: float) -> str:
    """A ``select`` expression passing, per time T, the frames within one period before T and
    the first frame at or after it: the nearest frame whatever the spacing of the frames."""
    # prev_t is the previous decoded frame's time (NAN for the first: not(gte(NAN, T)) is 1)
    return "+".join(f"gte(t,{t - period:.6f})*not(gte(prev_t,{t:.6f}))" for t in np.unique(wanted))


def _nearest_indices(pts: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted time, the index of the nearest timestamp (the earlier at a tie)."""
    if len(pts) == 0:
        return np.zeros(len(wanted), dtype=int)
    return np.array([int(np.argmin(np.abs(pts - t))) for t in wanted])


def _decode_selected(
    path: str | Path,
    seek_s: float,
    read_s: float,
    size: tuple[int, int],
    scaled: bool,
    threads: int,
    select: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The frames that ``select`` passes between ``seek_s`` and ``seek_s + read_s``, as RGB, and their timestamps."""
    width, height = size
    decoder = {"threads": threads} if threads else {}
    video = (
        ffmpeg.input(str(path), ss=f"{seek_s:.6f}", t=f"{read_s:.6f}", **decoder)
        .video.filter("select", select)
        .filter("showinfo", checksum=0)  # the timestamps only: checksums of every plane cost 1 ms a frame
    )
    if scaled:
        video = video.filter("scale", width, height, flags="area")
    stream = video.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
    out, err = _run(stream, path, "decode frames", loglevel="info", copyts=True)
    pts = np.array([float(m) for m in _PTS_RE.findall(err.decode("utf-8", "replace"))])
    frame_bytes = width * height * 3
    if len(out) % frame_bytes or len(out) // frame_bytes != len(pts):
        raise MediaError(
            f"{path}: cannot decode frames: {len(out) / frame_bytes:.1f} frames of {width}x{height} for {len(pts)} timestamps"
        )
    return np.frombuffer(out, dtype=np.uint8).reshape(len(pts), height, width, 3), pts


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
