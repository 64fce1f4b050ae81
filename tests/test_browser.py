"""The page of ``mmer serve`` in a real browser: Debian's headless Chromium driven through Selenium.

``mmer serve`` runs as its own process on a loopback port (an untrained tiny model, or the model
named by ``MMER_SERVE_TEST_MODEL``). Chromium uploads a clip through the file input and records
from its fake camera and microphone, fed from a clip generated here (``.y4m`` video, ``.wav``
sound); each time the predicted label and the bars must appear, and they must be the service's
own answer. The page with the upload's result is saved as a screenshot: ``docs/serve.png``
(the README's picture) when a trained model is served through ``MMER_SERVE_TEST_MODEL``, else
a temporary file, so a test run never replaces the picture with an untrained model's:

    MMER_SERVE_TEST_MODEL=models/model.keras pytest tests/test_browser.py

Skips, saying why, when ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing (CI
installs the Debian packages ``chromium`` and ``chromium-driver``: ``.ci/run``). Selenium never
downloads a browser or a driver here: the driver is named.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

import media_factory as mf
from conftest import ROOT
from feature_factory import untrained_model_bundle
from serve_factory import free_port, start_serve, stop, wait_until_up

pytestmark = pytest.mark.slow  # starts mmer serve (TensorFlow) and a browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "serve.png"
WINDOW = (1100, 1400)
WAIT_S = 180  # a prediction on a busy 2-core machine, plus the annotated video
RECORD_S = 4
N_CLASSES = 7


def browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (
            f"no headless browser: {', '.join(missing)} missing; install the Debian packages chromium and "
            "chromium-driver (apt-get install -y chromium chromium-driver) to run the browser tests"
        )
    return None


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A sample-corpus clip (face and voice), and the same as the fake camera's .y4m and microphone's .wav."""
    out = tmp_path_factory.mktemp("browser-media")
    # actor 24 is a test speaker of the default split: a trained demo model never saw them
    clip = mf.synth_video(out / "speaker 24.mp4", actor=24, emotion=3, size=(640, 360))
    y4m, wav = out / "camera.y4m", out / "microphone.wav"
    mf.ffmpeg("-i", str(clip), "-an", "-vf", "fps=25,format=yuv420p", "-f", "yuv4mpegpipe", str(y4m))
    mf.ffmpeg("-i", str(clip), "-vn", "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", str(wav))
    return {"clip": clip, "y4m": y4m, "wav": wav}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("browser-serve")
    trained = os.environ.get("MMER_SERVE_TEST_MODEL")  # as given, relative to the working folder
    model = trained or str(untrained_model_bundle(out / "model" / "model.keras"))
    port = free_port()
    process = start_serve(["--model", model, "--port", str(port)], out / "serve.log", cwd=None if trained else out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process=process)
        yield url
    except Exception:
        print((out / "serve.log").read_text(errors="replace"))
        raise
    finally:
        stop(process)


@pytest.fixture(scope="module")
def driver(server, media, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={media['y4m']}",
        f"--use-file-for-fake-audio-capture={media['wav']}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def wait_for(driver, condition, what: str, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d))
    except Exception as err:
        status = driver.find_element("id", "status").text
        error = driver.find_element("id", "error").text
        raise AssertionError(f"{what}: not within {timeout} s (status {status!r}, error {error!r})") from err


def open_page(driver, url: str) -> None:
    driver.get(f"{url}/")
    wait_for(driver, lambda d: "classes:" in d.find_element("id", "model").text, "the model's description", 30)


def shown_result(driver) -> dict:
    """The emotion heading and the bars of the model's probabilities, as the page shows them."""
    bars = driver.find_elements("css selector", '.group[data-key="probabilities"] .bar')
    return {
        "emotion": driver.find_element("id", "emotion").text,
        "bars": {b.find_element("class name", "name").text: b.find_element("class name", "value").text for b in bars},
        "top": [b.find_element("class name", "name").text for b in bars if "top" in b.get_attribute("class")],
        "shares": [
            b.find_element("class name", "fill").size["width"] / b.find_element("class name", "track").size["width"]
            for b in bars
        ],
    }


def screenshot_path(tmp_path: Path) -> Path:
    return SCREENSHOT if os.environ.get("MMER_SERVE_TEST_MODEL") else tmp_path / "serve.png"


def test_upload_shows_the_label_the_bars_and_the_annotated_video(driver, server, media, tmp_path):
    expected = httpx.post(
        f"{server}/predict", files={"file": (media["clip"].name, media["clip"].read_bytes())}, timeout=WAIT_S
    ).json()
    open_page(driver, server)
    driver.find_element("id", "file").send_keys(str(media["clip"]))
    wait_for(driver, lambda d: d.find_element("id", "emotion").text, "the predicted emotion")
    shown = shown_result(driver)
    assert shown["emotion"].lower() == f"{expected['emotion']} ({100 * expected['probability']:.0f}%)", shown
    assert list(shown["bars"]) == list(expected["probabilities"]) and len(shown["bars"]) == N_CLASSES
    assert shown["bars"] == {k: f"{100 * p:.0f}%" for k, p in expected["probabilities"].items()}
    assert shown["top"] == [expected["emotion"]]
    for share, p in zip(shown["shares"], expected["probabilities"].values()):  # each bar as long as its probability
        assert share == pytest.approx(p, abs=0.01), shown
    summary = driver.find_element("id", "summary").text
    assert summary.startswith(f"{media['clip'].name}: audio-video"), summary
    assert driver.find_element("id", "error").text == ""
    assert driver.switch_to.active_element == driver.find_element("id", "emotion")  # focus moves to the answer
    # the annotated video arrives, loads and can play
    wait_for(driver, lambda d: d.find_element("id", "annotated").is_displayed(), "the annotated video")
    duration = wait_for(
        driver,
        lambda d: d.execute_script(
            "const v = document.getElementById('annotated'); return v.readyState >= 1 && v.duration"
        ),
        "the annotated video's metadata",
        30,
    )
    assert abs(duration - expected["duration_s"]) < 0.2, duration
    driver.execute_script(
        "document.getElementById('annotated').currentTime = arguments[0]", expected["span"]["end_s"] - 0.3
    )
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const v = document.getElementById('annotated'); return !v.seeking && v.readyState >= 3"
        ),
        "the frame at the end of the speech",
        30,
    )
    time.sleep(1.0)  # the media controls' loading spinner fades out
    assert not driver.find_element("id", "timeline").is_displayed()  # a short clip: one window, no timeline shown
    picture = screenshot_path(tmp_path)
    driver.save_screenshot(str(picture))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000


def test_a_bad_file_says_what_failed(driver, server, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes, not a video\n")
    open_page(driver, server)
    driver.find_element("id", "file").send_keys(str(notes))
    error = wait_for(driver, lambda d: d.find_element("id", "error").text, "the error message", 60)
    assert error.startswith("No prediction for notes.mp4: notes.mp4: unreadable media file"), error
    assert error.endswith("(422 MediaError)"), error
    assert not driver.find_element("id", "result").is_displayed()


def test_the_page_shows_every_set_of_probabilities_and_a_timeline_when_the_answer_has_them(driver, server, media):
    """Answers may gain per-modality probabilities and a timeline: the page renders what is there."""
    answer = httpx.post(
        f"{server}/predict", files={"file": (media["clip"].name, media["clip"].read_bytes())}, timeout=WAIT_S
    ).json()
    labels = list(answer["probabilities"])
    one_hot = {name: float(name == labels[1]) for name in labels}
    answer["face_expression"] = {"emotion": labels[1], "probabilities": one_hot}
    answer["audio_probabilities"] = {name: 1 / len(labels) for name in labels}
    answer["timeline"] = [
        {"start_s": 0.0, "end_s": 2.0, "emotion": labels[0], "probabilities": {labels[0]: 0.6, labels[1]: 0.4}},
        {"start_s": 2.0, "end_s": 4.0, "emotion": labels[1], "probabilities": {labels[0]: 0.3, labels[1]: 0.7}},
    ]
    open_page(driver, server)
    # as a JSON string: ChromeDriver would hand over an object with its keys sorted
    driver.execute_script("render(JSON.parse(arguments[0]))", json.dumps(answer))
    groups = driver.find_elements("css selector", "#modalities .group")
    assert [g.get_attribute("data-key") for g in groups] == [
        "probabilities",
        "face_expression.probabilities",
        "audio_probabilities",
    ]
    assert all(len(g.find_elements("class name", "bar")) == len(labels) for g in groups)
    face_top = groups[1].find_elements("css selector", ".bar.top .name")
    assert [e.text for e in face_top] == [labels[1]]
    rows = driver.find_elements("css selector", "#timeline-table tbody tr")
    assert [[c.text for c in r.find_elements("tag name", "td")] for r in rows] == [
        ["0.00", "2.00", labels[0], "60%"],
        ["2.00", "4.00", labels[1], "70%"],
    ]
    assert driver.find_element("id", "timeline").is_displayed()
    assert len(driver.find_elements("css selector", "#timeline-strip span")) == 2
    # the span (two numbers in [0, 1] that do not sum to 1) is not taken for probabilities
    answer.update(span={"start_s": 0.2, "end_s": 0.9}, timeline=answer["timeline"][:1])  # one window: the clip
    driver.execute_script("render(JSON.parse(arguments[0]))", json.dumps(answer))
    assert len(driver.find_elements("css selector", "#modalities .group")) == 3
    assert not driver.find_element("id", "timeline").is_displayed()


def test_record_from_the_fake_camera_gives_a_prediction(driver, server):
    open_page(driver, server)
    driver.find_element("id", "seconds").send_keys(str(RECORD_S))
    record = driver.find_element("id", "record")
    record.send_keys("\n")  # the keyboard: Enter on the focused button
    wait_for(driver, lambda d: "Recording" in d.find_element("id", "status").text, "the recording to start", 30)
    assert not record.is_enabled()
    wait_for(driver, lambda d: d.find_element("id", "emotion").text, "a prediction of the recording")
    shown = shown_result(driver)
    assert len(shown["bars"]) == N_CLASSES and len(shown["top"]) == 1, shown
    summary = driver.find_element("id", "summary").text
    assert summary.startswith("camera-recording.webm: audio-video"), summary
    seconds = float(summary.split(": audio-video, ")[1].split(" s")[0])
    assert RECORD_S - 1.5 < seconds < RECORD_S + 1.5, summary


def test_skips_name_what_to_install(monkeypatch):
    """The skip message says which files are missing and which packages give them."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    reason = browser_missing()
    assert reason and "/nonexistent/chromium" in reason and "chromium-driver" in reason
