"""Room and channel copies of a speech signal for offline augmentation: pure numpy/scipy functions.

Another corpus differs from the training one in its room, microphone and level as much as in
its speakers. ``audio.perturbations`` can store, beside speed and pitch copies, copies of each
training span through a simulated room (:func:`reverberate`), a narrower channel
(:func:`band_limit`), a level change (:func:`gain`) and additive noise (:func:`add_noise`);
:func:`mmer.audio.perturb` applies them. The random ones (the room's impulse response, the
noise) draw from a generator seeded by the signal itself (:func:`signal_seed`), so a copy is
the same on every run and differs from clip to clip, as rooms and noises would.
"""

from __future__ import annotations

import zlib

import numpy as np

from mmer.errors import ConfigError

# the direct sound's share of the simulated room's energy: a talker about a metre from the microphone
DIRECT_TO_REVERBERANT_DB = 3.0


def signal_seed(signal: np.ndarray, salt: str = "") -> int:
    """A seed that depends on the signal's samples (and ``salt``), for per-clip random copies."""
    return zlib.crc32(salt.encode() + np.ascontiguousarray(signal, dtype=np.float32).tobytes())


def room_impulse_response(
    rt60_s: float, sample_rate: int, *, rng: np.random.Generator, drr_db: float = DIRECT_TO_REVERBERANT_DB
) -> np.ndarray:
    """A synthetic room impulse response: a direct impulse and an exponentially decaying noise tail.

    The tail's energy falls by 60 dB in ``rt60_s`` (the reverberation time); its energy is
    ``drr_db`` below the direct sound's. It starts 2.5 ms after the direct sound (the first
    reflections) and lasts one reverberation time.

    Parameters
    ----------
    rt60_s : float
        Reverberation time, 0.05 to 3 s (a small office about 0.3, a hall 1.5).
    sample_rate : int
    rng : numpy.random.Generator
    drr_db : float
        Direct-to-reverberant energy ratio, dB.

    Returns
    -------
    ndarray, float32, shape (n_taps,)
        Starts with the direct impulse of height 1.
    """
    if not 0.05 <= rt60_s <= 3.0:
        raise ConfigError(f"reverberation time must be in [0.05, 3] s, not {rt60_s}")
    delay = max(1, round(0.0025 * sample_rate))
    n_tail = max(1, round(rt60_s * sample_rate))
    t = np.arange(n_tail) / sample_rate
    tail = rng.standard_normal(n_tail) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)  # -60 dB at rt60 (amplitude 10^-3)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    response = np.zeros(delay + n_tail, dtype=np.float64)
    response[0] = 1.0
    response[delay:] = tail
    return response.astype(np.float32)


def reverberate(signal: np.ndarray, sample_rate: int, rt60_s: float, *, seed: int | None = None) -> np.ndarray:
    """The signal heard in a simulated room (:func:`room_impulse_response`), same length and RMS.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
    sample_rate : int
    rt60_s : float
        Reverberation time, s.
    seed : int, optional
        The room's generator seed; None: :func:`signal_seed` of the signal.

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    from scipy.signal import fftconvolve

    signal = _mono(signal)
    wet = fftconvolve(signal, room_impulse_response(rt60_s, sample_rate, rng=_generator(signal, "reverb", seed)))
    wet = wet[: len(signal)]
    return _same_rms(wet, signal)


def band_limit(signal: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """The signal through a band-pass channel (4th-order Butterworth, zero phase), same RMS.

    ``low_hz`` 0 keeps the low end (a low-pass); ``high_hz`` at or above Nyquist keeps the high
    end (a high-pass). A telephone channel is 300-3400 Hz.

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    from scipy.signal import butter, sosfiltfilt

    signal = _mono(signal)
    nyquist = sample_rate / 2.0
    if not 0.0 <= low_hz < high_hz:
        raise ConfigError(f"a band needs 0 <= low < high Hz, not {low_hz}-{high_hz}")
    if low_hz <= 0.0 and high_hz >= nyquist:
        return signal.copy()
    if low_hz <= 0.0:
        sos = butter(4, high_hz, btype="lowpass", fs=sample_rate, output="sos")
    elif high_hz >= nyquist:
        sos = butter(4, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    if len(signal) <= 3 * (2 * len(sos) + 1):  # too short for the zero-phase filter's padding
        return signal.copy()
    return _same_rms(sosfiltfilt(sos, signal), signal)


def gain(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """The signal ``gain_db`` louder (negative: quieter), clipped to [-1, 1] as a recorder would."""
    return np.clip(_mono(signal) * 10.0 ** (gain_db / 20.0), -1.0, 1.0).astype(np.float32)


def add_noise(signal: np.ndarray, snr_db: float, *, seed: int | None = None) -> np.ndarray:
    """The signal with white Gaussian noise ``snr_db`` below its mean power.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
    snr_db : float
        Signal-to-noise ratio over the whole signal (a speech span: mostly speech), dB.
    seed : int, optional
        The noise's generator seed; None: :func:`signal_seed` of the signal.

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    signal = _mono(signal)
    power = float(np.mean(signal.astype(np.float64) ** 2))
    if power == 0.0:
        return signal.copy()
    noise = _generator(signal, "noise", seed).standard_normal(len(signal)) * np.sqrt(power * 10.0 ** (-snr_db / 10.0))
    return (signal + noise).astype(np.float32)


def _generator(signal: np.ndarray, salt: str, seed: int | None) -> np.random.Generator:
    """The generator of a random copy: ``seed``, or the signal's own (:func:`signal_seed`)."""
    return np.random.default_rng(signal_seed(signal, salt) if seed is None else seed)


def _mono(signal: np.ndarray) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ConfigError(f"expected a mono signal of shape (n_samples,), got {signal.shape}")
    return signal


def _same_rms(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``out`` scaled to ``reference``'s RMS (a channel copy changes the timbre, not the level)."""
    rms_out = float(np.sqrt(np.mean(np.asarray(out, dtype=np.float64) ** 2)))
    rms_ref = float(np.sqrt(np.mean(np.asarray(reference, dtype=np.float64) ** 2)))
    scale = rms_ref / rms_out if rms_out > 0 else 1.0
    return (np.asarray(out, dtype=np.float64) * scale).astype(np.float32)
