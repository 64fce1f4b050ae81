"""Test media made at test time with the bundled ffmpeg (no binary media in the repo).

Signals are numpy arrays with known answers (a tone between silences, a click, noise);
videos are a still image (``skimage.data``) or frames whose index is coded in their
colour, encoded with libx264 and AAC. Bad files: truncated mp4s, a zero-byte file and
random bytes named .mp4.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile as sf
from skimage import data as skdata
from skimage import io as skio

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SR = 16000
FPS = 25
NOISE_AMPLITUDE = 1e-4  # about -83 dBFS: a quiet room


def _run(args: list[str], stdin: bytes | None = None) -> None:
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{done.stderr.decode(errors='replace')}")


# --------------------------------------------------------------------------- signals


def tone(duration_s: float, *, freq: float = 440.0, amplitude: float = 0.3, sr: int = SR) -> np.ndarray:
    """A sine tone with 5 ms fades (no clicks at the edges)."""
    t = np.arange(int(round(duration_s * sr))) / sr
    signal = amplitude * np.sin(2 * np.pi * freq * t)
    fade = min(len(signal) // 2, int(0.005 * sr))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return signal.astype(np.float32)


def silence(duration_s: float, *, sr: int = SR, rng: np.random.Generator | None = None) -> np.ndarray:
    """Room silence: faint white noise (digital zeros when ``rng`` is None)."""
    n = int(round(duration_s * sr))
    if rng is None:
        return np.zeros(n, np.float32)
    return (NOISE_AMPLITUDE * rng.standard_normal(n)).astype(np.float32)


def sequence(*parts: tuple[str, float], rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Concatenate ("tone", seconds) and ("silence", seconds) parts over a faint noise floor."""
    pieces = [tone(s, sr=sr) if kind == "tone" else np.zeros(int(round(s * sr)), np.float32) for kind, s in parts]
    signal = np.concatenate(pieces)
    return signal + silence(len(signal) / sr, sr=sr, rng=rng)


def tone_between_silences(
    rng: np.random.Generator, *, lead_s: float = 1.0, tone_s: float = 1.5, tail_s: float = 1.0
) -> np.ndarray:
    """Silence, a 440 Hz tone, silence: the speech span is the tone."""
    return sequence(("silence", lead_s), ("tone", tone_s), ("silence", tail_s), rng=rng)


def write_audio(path: Path, signal: np.ndarray, sr: int = SR) -> Path:
    """.wav (16-bit) or .flac, by the suffix."""
    sf.write(path, signal, sr, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------- videos


def index_colour(i: int) -> tuple[int, int, int]:
    """The flat colour of frame ``i`` (up to 125 frames): red counts units, blue fives-of-25."""
    return 20 + 8 * (i % 25), 128, 40 + 40 * (i // 25)


def colour_index(rgb: np.ndarray) -> int:
    """Inverse of :func:`index_colour` for a decoded (slightly lossy) frame."""
    red, _, blue = rgb.reshape(-1, 3).mean(axis=0)
    return int(round((red - 20) / 8)) + 25 * int(round((blue - 40) / 40))


def _audio_args(audio: np.ndarray | None, workdir: Path, sr: int) -> list[str]:
    if audio is None:
        return []
    wav = workdir / "audio.wav"
    write_audio(wav, audio, sr)
    return ["-i", str(wav)]


def _output_args(audio: np.ndarray | None, *, faststart: bool, gop: int) -> list[str]:
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", "-g", str(gop)]
    args += ["-c:a", "aac", "-b:a", "96k", "-shortest"] if audio is not None else ["-an"]
    return args + (["-movflags", "+faststart"] if faststart else [])


def indexed_video(
    path: Path,
    *,
    n_frames: int = 75,
    size: tuple[int, int] = (64, 48),
    fps: int = FPS,
    gop: int = 10,
    start_s: float = 0.0,
) -> Path:
    """Flat frames whose colour codes their index (:func:`index_colour`), no audio.

    ``start_s`` shifts the file's timestamps (a container start time other than 0).
    """
    width, height = size
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        frames[i] = index_colour(i)
    _run(
        [
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            str(fps),
            "-i",
            "pipe:",
            *_output_args(None, faststart=False, gop=gop),
            "-output_ts_offset",
            f"{start_s:.3f}",
            str(path),
        ],
        stdin=frames.tobytes(),
    )
    return path


def still_video(
    path: Path,
    image: np.ndarray,
    duration_s: float,
    *,
    audio: np.ndarray | None = None,
    sr: int = SR,
    fps: int = FPS,
    faststart: bool = False,
) -> Path:
    """A video of one still image (e.g. the astronaut's face), with optional audio."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "still.png"
        skio.imsave(png, image, check_contrast=False)
        _run(
            [
                "-loop",
                "1",
                "-framerate",
                str(fps),
                "-t",
                f"{duration_s:.3f}",
                "-i",
                str(png),
                *_audio_args(audio, Path(tmp), sr),
                *_output_args(audio, faststart=faststart, gop=fps),
                "-t",
                f"{duration_s:.3f}",
                str(path),
            ]
        )
    return path


def face_image() -> np.ndarray:
    """skimage's astronaut (512x512 RGB); MediaPipe finds her face around (225, 130)."""
    return skdata.astronaut()


def no_face_image() -> np.ndarray:
    """skimage's coffee cup (400x600 RGB): no face."""
    return skdata.coffee()


# --------------------------------------------------------------------------- bad files


def truncated(source: Path, path: Path, fraction: float) -> Path:
    """The first ``fraction`` of the bytes of ``source``."""
    content = source.read_bytes()
    path.write_bytes(content[: int(len(content) * fraction)])
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def random_bytes(path: Path, rng: np.random.Generator, n: int = 20000) -> Path:
    path.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


# --------------------------------------------------------------------------- bad-input corpus
# Clips of the sample corpus generator (mmer.synth) turned into the awkward files users have:
# no audio stream, a silent or noise-only track, portrait, 4K, two faces, no face, a variable
# frame rate. Every helper writes ``path`` and returns it.


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg (overwriting outputs); a failure raises with its stderr."""
    _run(list(args))


def ravdess_name(
    *,
    actor: int,
    emotion: int = 3,
    intensity: int = 1,
    statement: int = 1,
    repetition: int = 1,
    channel: int = 1,
    modality: int = 1,
) -> str:
    """``MM-CC-EE-II-SS-RR-AA.mp4``."""
    return (
        f"{modality:02d}-{channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"
    )


def synth_video(
    path: Path,
    *,
    actor: int,
    emotion: int = 3,
    intensity: int = 1,
    statement: int = 1,
    repetition: int = 1,
    size: tuple[int, int] = (320, 180),
    seed: int = 0,
) -> Path:
    """One clip of the sample corpus (a face speaking with emotion, room noise around), any name."""
    from mmer.synth.corpus import ClipSpec, encode_clip, render_clip

    spec = ClipSpec(actor, emotion, intensity, statement, repetition)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_clip(render_clip(spec, seed=seed, width=size[0], height=size[1]), path)
    return path


def without_audio(source: Path, path: Path) -> Path:
    """The video stream of ``source`` alone (no audio stream at all)."""
    ffmpeg("-i", str(source), "-map", "0:v", "-c:v", "copy", "-an", str(path))
    return path


def with_audio(source: Path, path: Path, signal: np.ndarray, sr: int = SR) -> Path:
    """The video of ``source`` with ``signal`` as its (AAC) audio track instead."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_audio(Path(tmp) / "track.wav", signal, sr)
        ffmpeg(
            "-i",
            str(source),
            "-i",
            str(wav),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        )
    return path


def reencoded(
    source: Path,
    path: Path,
    *,
    vf: str | None = None,
    start_s: float | None = None,
    duration_s: float | None = None,
    extra: tuple[str, ...] = (),
) -> Path:
    """``source`` cut (``start_s``, ``duration_s``) and/or filtered (``vf``), re-encoded (x264 + AAC)."""
    args = ([] if start_s is None else ["-ss", f"{start_s:.3f}"]) + ["-i", str(source)]
    args += [] if duration_s is None else ["-t", f"{duration_s:.3f}"]
    args += [] if vf is None else ["-vf", vf]
    ffmpeg(
        *args,
        *extra,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(path),
    )
    return path


def portrait(source: Path, path: Path, size: tuple[int, int] = (720, 1280), *, letterbox: bool = False) -> Path:
    """A portrait frame (720x1280) as a phone films it: the middle of the landscape picture,
    scaled up (the face fills the width). ``letterbox``: the whole picture scaled to the width
    and padded above and below instead (a small face in a tall frame)."""
    width, height = size
    if letterbox:
        return reencoded(source, path, vf=f"scale={width}:-2,pad={width}:{height}:0:(oh-ih)/2")
    return reencoded(source, path, vf=f"crop=ih*{width}/{height}:ih,scale={width}:{height}")


def upscaled(
    source: Path, path: Path, *, start_s: float, duration_s: float, size: tuple[int, int] = (3840, 2160)
) -> Path:
    """A high-resolution (4K by default) cut of ``source``."""
    return reencoded(
        source, path, vf=f"scale={size[0]}:{size[1]}:flags=bicubic", start_s=start_s, duration_s=duration_s
    )


def side_by_side(left: Path, right: Path, path: Path) -> Path:
    """The middle halves of two clips next to each other (two faces, each as large as in its
    clip, in every frame of the same size), with the left one's audio."""
    halves = "[0:v]crop=iw/2:ih:iw/4:0[a];[1:v]crop=iw/2:ih:iw/4:0[b];[a][b]hstack=inputs=2:shortest=1[v]"
    ffmpeg(
        "-i",
        str(left),
        "-i",
        str(right),
        "-filter_complex",
        halves,
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        str(path),
    )
    return path


def image_with_audio_of(source: Path, image: np.ndarray, path: Path, *, fps: int = FPS) -> Path:
    """A still ``image`` (e.g. :func:`no_face_image`) for the length of ``source``, with its audio."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "still.png"
        skio.imsave(png, image, check_contrast=False)
        ffmpeg(
            "-loop",
            "1",
            "-framerate",
            str(fps),
            "-i",
            str(png),
            "-i",
            str(source),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-vf",
            "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
            "-shortest",
            str(path),
        )
    return path


def variable_frame_rate(source: Path, path: Path, *, after_s: float = 1.5, keep_every: int = 4) -> Path:
    """Every frame up to ``after_s``, then one in ``keep_every`` (timestamps kept): a variable frame rate."""
    return reencoded(source, path, vf=f"select='lt(t,{after_s})+not(mod(n,{keep_every}))'", extra=("-fps_mode", "vfr"))


def moov_at_end(source: Path, path: Path) -> Path:
    """``source`` remuxed with its index (moov atom) after the media data, as cameras write it."""
    ffmpeg("-i", str(source), "-c", "copy", str(path))  # the mp4 muxer's default
    return path


def tiny_corpus(out: Path, *, actors: tuple[int, ...] = (1, 2, 3, 4), clips_per_actor: int = 3, seed: int = 0) -> Path:
    """A small sample corpus (``mmer.synth``) at 320x180; clips already in ``out`` are kept, so
    modules that ask for the same folder (e.g. under pytest's base temp) share one."""
    from mmer.synth.corpus import synth_corpus

    synth_corpus(out, seed=seed, actors=actors, clips_per_actor=clips_per_actor, width=320, height=180, progress=False)
    return out
