"""A fabricated index and feature caches with a learnable emotion signal, for the model tests.

The caches have the layout the preprocessing stages write (``mfcc`` [n, T, c] standardised
and zero pre-padded with ``speech_frames``; ``faces`` uint8 [n, f, s, s, 3] with ``face_found``),
at small sizes. Each class adds its own pattern: a raised band of MFCC coefficients with a
class-specific rhythm, and a face tint plus a bright patch at a class-specific place.
A few clips are left out of one cache or the other, as failed clips are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmer.corpus import INDEX_COLUMNS
from mmer.featurefile import FeatureCache, write_cache
from mmer.labels import label_names
from mmer.splits import assign_folds, fixed_split

EMOTIONS = ("happy", "sad", "angry", "fearful")
EMOTION_CODES = {"neutral": 1, "calm": 2, "happy": 3, "sad": 4, "angry": 5, "fearful": 6, "disgust": 7, "surprised": 8}


@dataclass
class FakeCorpus:
    index: pd.DataFrame
    audio: FeatureCache
    video: FeatureCache
    label_names: list[str]
    index_path: Path | None = None
    audio_path: Path | None = None
    video_path: Path | None = None

    @property
    def caches(self) -> dict[str, FeatureCache]:
        return {"audio": self.audio, "video": self.video}


def make_index(
    *,
    actors: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    emotions: tuple[str, ...] = EMOTIONS,
    repetitions: int = 2,
    val_actors: tuple[int, ...] = (5,),
    test_actors: tuple[int, ...] = (6,),
    n_folds: int = 3,
) -> pd.DataFrame:
    """An index of audio-video speech clips shaped like ``data/index.csv``."""
    names = label_names("subset", emotions)
    rows = []
    for actor in actors:
        for emotion in emotions:
            for statement in (1, 2):
                for repetition in range(1, repetitions + 1):
                    clip_id = f"01-01-{EMOTION_CODES[emotion]:02d}-01-{statement:02d}-{repetition:02d}-{actor:02d}"
                    rows.append(
                        {
                            "clip_id": clip_id,
                            "path": f"data/raw/Actor_{actor:02d}/{clip_id}.mp4",
                            "dataset": "fabricated",
                            "modality": "av",
                            "vocal_channel": "speech",
                            "actor": actor,
                            "sex": "male" if actor % 2 else "female",
                            "emotion": emotion,
                            "label": names.index(emotion),
                            "intensity": "normal",
                            "statement": statement,
                            "repetition": repetition,
                            "recording": clip_id[3:],
                            "split": fixed_split(actor, val_actors, test_actors),
                        }
                    )
    index = pd.DataFrame(rows)
    index["fold"] = index["actor"].map(assign_folds(index["actor"], n_folds)).astype(int)
    return index.sort_values("clip_id").reset_index(drop=True)[INDEX_COLUMNS]


def fake_mfcc(
    labels: np.ndarray, *, rng: np.random.Generator, padded_frames: int = 40, n_mfcc: int = 8, signal: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised, zero pre-padded MFCCs [n, T, c] and the unpadded lengths [n]."""
    n = len(labels)
    lengths = rng.integers(padded_frames // 2, padded_frames + padded_frames // 4, size=n).astype(np.int32)
    mfcc = np.zeros((n, padded_frames, n_mfcc), np.float32)
    for i, (label, length) in enumerate(zip(labels, lengths)):
        frames = rng.normal(size=(int(length), n_mfcc))
        band = label % n_mfcc
        frames[:, band] += 2.0 * signal
        frames[:, (band + 1) % n_mfcc] += signal * np.sin(np.arange(length) * (0.3 + 0.4 * label))
        frames = (frames - frames.mean()) / frames.std()
        kept = frames[-padded_frames:]
        mfcc[i, padded_frames - len(kept) :] = kept
    return mfcc, lengths


def fake_faces(
    labels: np.ndarray, *, rng: np.random.Generator, speech_frames: int = 3, size: int = 16, signal: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Face crops uint8 [n, f, s, s, 3] and face_found [n, f]."""
    n = len(labels)
    faces = rng.normal(110, 30, size=(n, speech_frames, size, size, 3))
    half = size // 2
    for i, label in enumerate(labels):
        faces[i, ..., label % 3] += 40 * signal
        row, col = divmod(int(label) % 4, 2)
        faces[i, :, row * half : (row + 1) * half, col * half : (col + 1) * half] += 60 * signal
    found = rng.random((n, speech_frames)) > 0.1
    return np.clip(faces, 0, 255).astype(np.uint8), found


def make_corpus(
    *,
    seed: int = 0,
    padded_frames: int = 40,
    n_mfcc: int = 8,
    speech_frames: int = 3,
    size: int = 16,
    signal: float = 1.0,
    drop: int = 2,
    raw: bool = False,
    perturbations: tuple[str, ...] = (),
    **index_kwargs,
) -> FakeCorpus:
    """Index + audio and video caches in memory; ``drop`` clips missing from each cache.

    ``raw``: MFCCs not standardised per clip (``normalise: none``, offset and scaled);
    ``perturbations``: names of perturbed audio copies stored beside the originals.
    """
    rng = np.random.default_rng(seed)
    index = make_index(**index_kwargs)
    labels = index["label"].to_numpy()
    mfcc, lengths = fake_mfcc(labels, rng=rng, padded_frames=padded_frames, n_mfcc=n_mfcc, signal=signal)
    if raw:
        mfcc = np.where(mfcc != 0, 8.0 * mfcc + 20.0, 0.0).astype(np.float32)
    audio_arrays = {"audio_features": mfcc, "speech_frames": lengths}
    if perturbations:
        noise = rng.normal(0, 0.1 * (8.0 if raw else 1.0), size=(len(perturbations), *mfcc.shape)).astype(np.float32)
        audio_arrays["audio_features_perturbed"] = (
            np.where(mfcc != 0, mfcc + noise, 0.0).transpose(1, 0, 2, 3).astype(np.float32)
        )
        audio_arrays["speech_frames_perturbed"] = np.repeat(lengths[:, None], len(perturbations), axis=1)
    faces, found = fake_faces(labels, rng=rng, speech_frames=speech_frames, size=size, signal=signal)
    ids = index["clip_id"].tolist()
    no_audio = set(rng.choice(len(ids), size=drop, replace=False)) if drop else set()
    no_video = set(rng.choice(len(ids), size=drop, replace=False)) if drop else set()
    keep_audio = [i for i in range(len(ids)) if i not in no_audio]
    keep_video = [i for i in range(len(ids)) if i not in no_video]
    audio_attrs = {
        "n_mfcc": n_mfcc,
        "padded_frames": padded_frames,
        "hop_length": 160,
        "n_fft": 512,
        "win_length": 400,
        "n_mels": 40,
        "deltas": False,
        "sample_rate": 16000,
        "layout": "clip,time,coefficient",
        "normalise": "none" if raw else "clip",
        "perturbations": list(perturbations),
    }
    video_attrs = {
        "speech_frames": speech_frames,
        "size": size,
        "margin": 0.25,
        "model": "short",
        "min_confidence": 0.5,
        "layout": "clip,frame,y,x,rgb",
    }
    audio = FeatureCache({k: v[keep_audio] for k, v in audio_arrays.items()}, [ids[i] for i in keep_audio], audio_attrs)
    video = FeatureCache(
        {
            "faces": faces[keep_video],
            "face_found": found[keep_video],
            "boxes": np.zeros((len(keep_video), speech_frames, 4), np.float32),
        },
        [ids[i] for i in keep_video],
        video_attrs,
    )
    names = label_names("subset", list(index.drop_duplicates("label").sort_values("label")["emotion"]))
    return FakeCorpus(index=index, audio=audio, video=video, label_names=names)


def write_corpus(root: Path, corpus: FakeCorpus) -> FakeCorpus:
    """Write ``data/index.csv``, ``features/audio.h5`` and ``features/video.h5`` under ``root``."""
    corpus.index_path = root / "data" / "index.csv"
    corpus.audio_path = root / "features" / "audio.h5"
    corpus.video_path = root / "features" / "video.h5"
    corpus.index_path.parent.mkdir(parents=True, exist_ok=True)
    corpus.index.to_csv(corpus.index_path, index=False)
    for cache, path in ((corpus.audio, corpus.audio_path), (corpus.video, corpus.video_path)):
        write_cache(path, cache.arrays, cache.clip_ids, cache.attrs)
    return corpus


def tiny_model_params(**changes):
    """ModelParams for models of a few thousand weights (seconds per epoch on the fake corpus)."""
    from mmer.config import ModelParams

    base = {
        "audio_units": 8,
        "audio_dense": 16,
        "audio_pool": 1,
        "video_filters": (4, 8),
        "video_dense": 16,
        "head_units": 16,
    }
    return ModelParams(**{**base, **changes})


def tiny_augment_params(**changes):
    """AugmentParams scaled to the fake corpus's 40 frames and 16-pixel faces."""
    from mmer.config import AugmentParams

    base = {"time_shift": 3, "time_mask_width": 3, "pixel_shift": 1}
    return AugmentParams(**{**base, **changes})


def untrained_model_bundle(path: Path, *, inputs: str = "av", fusion: str = "concat", padded_frames: int = 300) -> Path:
    """An untrained tiny model saved as ``path`` (+ model.json) with mmer's default feature params:
    a :class:`mmer.predictor.Predictor` reads real clips with it in seconds, without a training run.
    Its probabilities are meaningless; the classes are the demo's seven (merged7)."""
    import dataclasses

    from mmer.bundle import model_metadata, save_model_bundle
    from mmer.config import AudioParams, FacesParams, SpanParams
    from mmer.networks import build_model

    names = label_names("merged7")
    audio = {**dataclasses.asdict(AudioParams()), "padded_frames": padded_frames, "sample_rate": SpanParams.sample_rate}
    video = {k: v for k, v in dataclasses.asdict(FacesParams()).items() if k not in ("jobs", "max_failed_share")}
    span = dataclasses.asdict(SpanParams())
    params = tiny_model_params(inputs=inputs, fusion=fusion)
    model = build_model(
        n_classes=len(names),
        audio_features_shape=(padded_frames, audio["n_mfcc"]),
        faces_shape=(video["frames_per_clip"], video["size"], video["size"], 3),
        **dataclasses.asdict(params),
    )
    attrs = {"audio": {**audio, "span": span}, "video": {**video, "span": span}}
    meta = model_metadata(
        model, model_inputs=inputs, label_names=names, feature_attrs=attrs, params={"model": dataclasses.asdict(params)}
    )
    save_model_bundle(model, meta, path)
    return path
