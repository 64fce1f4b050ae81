"""mmer.serve: the JSON API over a real uvicorn server, every bad upload, limits, a full queue, clean-up.

One server per module (an untrained tiny model with mmer's default feature params, a uvicorn
thread on a loopback port). The temporary folder of this process is pointed at a folder of
the test's own while the server runs, so after every request the test can see that nothing
but the service's (empty) upload folder and the predictor's (empty) scratch folder is left.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from mmer import media, speech
from mmer.errors import MediaError, ModelError, NoFaceError
from mmer.predictor import Predictor
from mmer.serve import MB, ServeLimits, client_error, create_app, shown_name

import media_factory as mf
import test_bad_inputs as bad
from feature_factory import untrained_model_bundle
from serve_factory import ServerThread

LIMITS = ServeLimits(max_upload_bytes=8 * MB, max_duration_s=10.0, queue=3, upload_timeout_s=60.0)
PREDICT_KEYS = {
    "file",
    "emotion",
    "probability",
    "probabilities",
    "head",
    "input",
    "span",
    "duration_s",
    "faces_found",
    "face_times_s",
    "model",
    "seconds",
    "annotated",
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """This process's temporary folder while the module runs: a folder the tests can inspect."""
    folder = tmp_path_factory.mktemp("tmp")
    before, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = before


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    out = tmp_path_factory.mktemp("clips")
    good = mf.synth_video(out / "good.mp4", actor=1, emotion=5)
    rng = np.random.default_rng(3)
    return {
        "good": good,
        "voice": mf.write_audio(out / "voice.wav", mf.tone_between_silences(rng, lead_s=0.5, tail_s=0.5)),
        "long": mf.write_audio(out / "long.wav", mf.tone(LIMITS.max_duration_s + 2.0)),
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory, scratch, clips):
    model = untrained_model_bundle(tmp_path_factory.mktemp("model") / "model.keras")
    predictor = Predictor(model)
    expected = predictor.predict(clips["good"]).to_json()  # before the server's worker thread owns it
    app = create_app(predictor, limits=LIMITS)
    service = app.state.service
    with ServerThread(app) as server:
        server.service, server.predictor, server.expected = service, predictor, expected
        yield server
    assert not service.root.exists(), "the upload folder outlived the app"
    predictor.close()


def post(served, clip: Path | bytes, *, endpoint: str = "predict", name: str | None = None, **kwargs) -> httpx.Response:
    content = clip if isinstance(clip, bytes) else clip.read_bytes()
    if name is None:
        return httpx.post(f"{served.url}/{endpoint}", content=content, timeout=120, **kwargs)
    return httpx.post(f"{served.url}/{endpoint}", files={"file": (name, content)}, timeout=120, **kwargs)


def assert_clean(served, scratch: Path) -> None:
    """Nothing left: the upload folder and the predictor's scratch folder are empty, nothing else appeared."""
    assert list(served.service.root.iterdir()) == []
    predictor_tmp = Path(served.predictor._tmp.name)
    assert list(predictor_tmp.iterdir()) == []
    assert sorted(p.name for p in scratch.iterdir()) == sorted([served.service.root.name, predictor_tmp.name])


def assert_error(response: httpx.Response, status: int, kind: str, pattern: str = "") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "kind", "status"} and body["status"] == status and body["kind"] == kind, body
    assert re.search(pattern, body["error"]), body["error"]
    assert "Traceback" not in body["error"] and tempfile.gettempdir() not in body["error"], body["error"]
    return body


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("clip.mp4", "clip.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\clip.mp4", "clip.mp4"),
        ("a\nb\x00c.mp4", "abc.mp4"),
        ("", "upload"),
        (None, "upload"),
        ("dir/", "upload"),
        ("x" * 300, "x" * 120),
    ],
)
def test_shown_name_is_one_printable_component(given, shown):
    assert shown_name(given) == shown


@pytest.mark.parametrize(
    "limits",
    [
        {"max_upload_bytes": 0},
        {"max_duration_s": 0},
        {"max_duration_s": float("nan")},
        {"queue": -1},
        {"upload_timeout_s": 0},
    ],
)
def test_bad_limits_raise(limits):
    from mmer.errors import ConfigError

    with pytest.raises(ConfigError, match="serve: the"):
        ServeLimits(**limits)


def test_client_error_hides_the_server_path_and_maps_status(tmp_path):
    path = tmp_path / "req-1" / "upload"
    answer = client_error(NoFaceError(f"{path}: no face in any of 6 sampled frames"), path, "me.mp4")
    assert (answer.status, answer.kind, answer.message) == (
        422,
        "NoFaceError",
        "me.mp4: no face in any of 6 sampled frames",
    )
    assert client_error(ModelError(f"{path}: model broke"), path, "me.mp4").status == 500
    assert client_error(MediaError("x"), path, "me.mp4").status == 422


# --------------------------------------------------------------------------- the API


def test_health_names_the_model_labels_and_limits(served):
    health = httpx.get(f"{served.url}/health").json()
    assert health["status"] == "ok" and health["model"] == served.predictor.model_id
    assert health["labels"] == served.predictor.label_names and health["inputs"] == "av"
    assert health["limits"]["max_upload_mb"] == 8 and health["limits"]["max_duration_s"] == 10
    assert health["busy"] == 0 and health["capacity"] == 4


def test_page_is_served_with_its_controls_and_a_strict_policy(served):
    response = httpx.get(f"{served.url}/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for control in ('id="file"', 'id="record"', 'role="alert"', 'aria-live="polite"', 'id="annotated"'):
        assert control in response.text


def test_predict_gives_the_json_of_mmer_predict(served, clips, scratch):
    response = post(served, clips["good"], name="my clip.mp4")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= PREDICT_KEYS and answer["file"] == "my clip.mp4"
    expected = served.expected
    for key in ("emotion", "head", "input", "span", "duration_s", "faces_found", "face_times_s", "model"):
        assert answer[key] == expected[key], key
    assert answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
    assert_clean(served, scratch)


def test_raw_body_and_form_give_the_same_answer_and_a_name_never_makes_a_path(served, clips, scratch):
    raw = post(served, clips["good"]).json()
    form = post(served, clips["good"], name="../../../escape.mp4").json()
    assert raw["file"] == "upload" and form["file"] == "escape.mp4"
    assert raw["probabilities"] == form["probabilities"]
    assert not (scratch.parent / "escape.mp4").exists()
    assert_clean(served, scratch)


def test_annotate_returns_a_playable_mp4(served, clips, scratch, tmp_path):
    response = post(served, clips["good"], endpoint="annotate", name="good.mp4")
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    out = tmp_path / "annotated.mp4"
    out.write_bytes(response.content)
    info, source = media.probe(out), media.probe(clips["good"])
    assert info.has_video and info.has_audio and info.frame_size == source.frame_size
    assert info.duration_s == pytest.approx(source.duration_s, abs=0.1)
    assert_clean(served, scratch)


def test_audio_only_clip_is_refused_by_the_av_model_with_its_reason(served, clips, scratch):
    for endpoint in ("predict", "annotate"):
        response = post(served, clips["voice"], endpoint=endpoint, name="voice.wav")
        assert_error(response, 422, "MediaError", r"^voice\.wav: no video stream \(an audio-only file\): the av model")
    assert_clean(served, scratch)


@pytest.mark.parametrize(
    ("body", "kind", "pattern"),
    [
        (b"", "MediaError", r"^upload: unreadable media file: empty file \(0 bytes\)"),
        (b"just some text, named nothing", "MediaError", "^upload: unreadable media file: Invalid data"),
        (b"\x00" * 4096, "MediaError", "^upload: unreadable media file"),
    ],
)
def test_bodies_that_are_not_media_get_422(served, scratch, body, kind, pattern):
    assert_error(post(served, body), 422, kind, pattern)
    assert_clean(served, scratch)


def test_a_form_without_a_file_part_gets_422(served, clips, scratch):
    response = httpx.post(f"{served.url}/predict", files={"clip": ("x.mp4", clips["good"].read_bytes())})
    assert_error(response, 422, "BadForm", "no part named 'file'")
    response = httpx.post(f"{served.url}/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert_error(response, 422, "BadForm", "boundary")
    assert_clean(served, scratch)


def test_unknown_routes_and_methods_answer_json(served):
    assert_error(httpx.get(f"{served.url}/nothing"), 404, "HTTPError", "Not Found")
    assert_error(httpx.get(f"{served.url}/predict"), 405, "HTTPError", "Method Not Allowed")


# --------------------------------------------------------------------------- limits


def test_an_upload_declared_too_large_gets_413_before_it_is_read(served, scratch):
    body = b"\x00" * (LIMITS.max_upload_bytes + 64 * 1024)
    assert_error(post(served, body), 413, "TooLarge", "larger than the limit of 8 MB")
    assert_clean(served, scratch)


def test_a_streamed_upload_is_cut_off_at_the_limit(served, clips, scratch):
    """No Content-Length (chunked): the bytes are counted as they arrive."""
    sent = {"bytes": 0}

    def chunks():
        block = clips["good"].read_bytes()
        while sent["bytes"] <= 2 * LIMITS.max_upload_bytes:
            sent["bytes"] += len(block)
            yield block

    response = httpx.post(f"{served.url}/predict", content=chunks(), timeout=60)
    assert_error(response, 413, "TooLarge", "larger than the limit")
    # a form is counted on its file part alone, also past the limit
    big = clips["good"].read_bytes() * (LIMITS.max_upload_bytes // clips["good"].stat().st_size + 1)
    assert_error(post(served, big[: LIMITS.max_upload_bytes + 1], name="big.mp4"), 413, "TooLarge")

    # parts other than the file are not kept, but they count
    def form_with_a_huge_other_part():
        yield b'--b\r\nContent-Disposition: form-data; name="notes"\r\n\r\n'
        for _ in range(2 * LIMITS.max_upload_bytes // len(block)):
            yield block
        yield b"\r\n--b--\r\n"

    block = b"x" * 65536
    response = httpx.post(
        f"{served.url}/predict",
        content=form_with_a_huge_other_part(),
        headers={"content-type": "multipart/form-data; boundary=b"},
        timeout=60,
    )
    assert_error(response, 413, "TooLarge")
    assert httpx.get(f"{served.url}/health").json()["busy"] == 0
    assert_clean(served, scratch)


def test_a_clip_longer_than_the_limit_gets_413(served, clips, scratch):
    assert_error(post(served, clips["long"], name="long.wav"), 413, "TooLong", r"^long\.wav: the clip lasts 12\.0 s")
    assert_clean(served, scratch)


def without_duration(source: Path, path: Path, *codec: str) -> Path:
    """``source`` in Matroska written to a pipe: no duration in the header (as MediaRecorder's WebM).
    (PCM would not do: ffmpeg works a duration out of its constant bit rate.)"""
    with open(path, "wb") as out:
        cmd = [mf.FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(source), *(codec or ("-c", "copy"))]
        subprocess.run([*cmd, "-f", "matroska", "pipe:1"], stdout=out, check=True)
    assert media.probe(path).duration_s is None
    return path


def test_a_clip_without_a_duration_is_measured_before_it_is_decoded(served, clips, scratch, tmp_path):
    live = post(served, without_duration(clips["good"], tmp_path / "live.mkv"), name="live.mkv")
    assert live.status_code == 200, live.text
    assert live.json()["probabilities"] == pytest.approx(served.expected["probabilities"], abs=1e-6)
    long = without_duration(clips["long"], tmp_path / "long-live.mkv", "-c:a", "aac")
    assert_error(
        post(served, long, name="long-live.mkv"),
        413,
        "TooLong",
        r"^long-live\.mkv: the clip lasts 12\.\d s, longer than the limit of 10 s",
    )
    assert_clean(served, scratch)


def test_a_full_queue_answers_503_at_once_and_the_admitted_finish(served, clips, scratch):
    """Fill every slot with uploads held half-sent, then one more request: 503; release them: 200 each."""
    data = clips["good"].read_bytes()
    release = threading.Event()
    results: list[httpx.Response | Exception] = []

    def held_upload():
        def body():
            yield data[: len(data) // 2]
            release.wait(60)
            yield data[len(data) // 2 :]

        try:
            results.append(httpx.post(f"{served.url}/predict", content=body(), timeout=120))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            results.append(err)

    threads = [threading.Thread(target=held_upload) for _ in range(LIMITS.capacity)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while httpx.get(f"{served.url}/health").json()["busy"] < LIMITS.capacity:
            assert time.monotonic() < deadline, "the held uploads were not admitted"
            time.sleep(0.05)
        started = time.perf_counter()
        assert_error(post(served, data), 503, "Busy", "busy")
        assert time.perf_counter() - started < 5
        assert httpx.get(f"{served.url}/health").status_code == 200  # the cheap endpoints still answer
    finally:
        release.set()
        for thread in threads:
            thread.join(120)
    assert [r.status_code if isinstance(r, httpx.Response) else r for r in results] == [200] * LIMITS.capacity
    for response in results:
        assert response.json()["probabilities"] == pytest.approx(served.expected["probabilities"], abs=1e-6)
    assert_clean(served, scratch)


def test_concurrent_uploads_are_answered_one_by_one_with_their_own_answers(served, clips, scratch):
    """Four clients at once, two clips: each gets its own clip's answer (the one worker is never shared)."""
    uploads = [("good.mp4", clips["good"]), ("voice.wav", clips["voice"])] * 2
    results: dict[int, httpx.Response] = {}

    def client(i: int, name: str, path: Path) -> None:
        results[i] = post(served, path, name=name)

    threads = [threading.Thread(target=client, args=(i, *upload)) for i, upload in enumerate(uploads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for i, (name, _) in enumerate(uploads):
        if name == "good.mp4":
            assert results[i].status_code == 200 and results[i].json()["file"] == name
            assert results[i].json()["probabilities"] == pytest.approx(served.expected["probabilities"], abs=1e-6)
        else:
            assert_error(results[i], 422, "MediaError", "^voice.wav: no video stream")
    assert httpx.get(f"{served.url}/health").json()["busy"] == 0
    assert_clean(served, scratch)


# --------------------------------------------------------------------------- the bad-input corpus


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory):
    """Every file of tests/test_bad_inputs.py's mixed corpus, made by its own makers."""
    out = tmp_path_factory.mktemp("bad")
    src = {
        "one": mf.synth_video(out / "src" / "one.mp4", actor=1, emotion=5),
        "two": mf.synth_video(out / "src" / "two.mp4", actor=2, emotion=6, statement=2),
    }
    src["span"] = speech.trim_clip(src["one"], out / "src" / "one.wav")
    rng = np.random.default_rng(7)
    files = {}
    for key, (path, *_) in bad.CASES.items():
        bad._make_case(key, out / "cases" / path, src, rng)
        files[key] = out / "cases" / path
    for key, path in bad.NOT_INDEXED.items():
        bad._make_case(key, out / "cases" / path, src, rng)
        files[key] = out / "cases" / path
    return files


@pytest.mark.slow
@pytest.mark.parametrize("key", [*bad.CASES, *bad.NOT_INDEXED])
def test_every_bad_input_gets_its_status_and_reason(served, bad_corpus, scratch, key):
    path = bad_corpus[key]
    response = post(served, path, name=path.name)
    outcome = bad.CASES[key][3] if key in bad.CASES else None
    if outcome is None:
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["file"] == path.name and sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    else:
        kind, reason = outcome
        body = assert_error(response, 422, kind, reason)
        assert body["error"].startswith(f"{path.name}: ") or body["error"].startswith("upload"), body
    assert httpx.get(f"{served.url}/health").status_code == 200
    assert_clean(served, scratch)


def test_the_answers_are_json_objects_with_no_server_path(served, clips):
    answer = post(served, clips["good"], name="x.mp4").json()
    assert served.service.root.name not in json.dumps(answer)


def test_warm_up_predicts_a_generated_clip_and_leaves_nothing(served, scratch, caplog):
    from mmer.serve import warm_up

    caplog.set_level("INFO", logger="mmer.serve")
    warm_up(served.predictor)  # the server is idle: its worker thread is not using the predictor
    assert any(r.getMessage().startswith("warmed up in") for r in caplog.records)
    assert not any(r.levelname == "WARNING" for r in caplog.records), caplog.text
    assert_clean(served, scratch)


def test_a_cancelled_request_waits_for_its_work_before_its_folder_goes():
    import asyncio

    from mmer.serve import Service

    service = Service(None, LIMITS)
    finished = []

    def work() -> None:
        time.sleep(0.5)
        finished.append(True)

    async def cancelled_request() -> None:
        task = asyncio.create_task(service.in_worker(work))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == [True]  # the cancel waited for the worker

    try:
        asyncio.run(cancelled_request())
    finally:
        service.close()
    assert not service.root.exists()
