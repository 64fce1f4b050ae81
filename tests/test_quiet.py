"""MediaPipe's C++ start-up lines stay off the terminal; real errors still reach it."""

import logging
import os
import subprocess
import sys

from mmer.logs import native_stderr_filtered

from conftest import ROOT

NOISE = [
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "W0000 00:00:1796186875.922609   29099 inference_feedback_manager.cc:114] Feedback manager requires a model with a single "
    "signature inference. Disabling support for feedback tensors.",
    "I0000 00:00:1796186875.922609   29099 gl_context.cc:357] GL version: 2.1",
]


def test_start_up_lines_are_held_back_and_errors_pass(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger="mmer.logs"), native_stderr_filtered():
        for line in NOISE[:2]:
            os.write(2, f"{line}\n".encode())
        os.write(2, b"E0000 00:00:1796186875.9   29099 calculator_graph.cc:887] a real failure\n")
        for line in NOISE[2:]:
            os.write(2, f"{line}\n".encode())
        os.write(2, b"Segmentation fault is not noise\n")
    err = capfd.readouterr().err
    assert (
        err
        == "E0000 00:00:1796186875.9   29099 calculator_graph.cc:887] a real failure\nSegmentation fault is not noise\n"
    )
    assert [r.getMessage() for r in caplog.records] == [f"native start-up line: {line}" for line in NOISE]
    os.write(2, b"after the block\n")  # stderr is back
    assert capfd.readouterr().err == "after the block\n"


def test_an_exception_inside_restores_stderr_and_shows_what_was_written(capfd):
    try:
        with native_stderr_filtered():
            os.write(2, b"F0000 00:00:1.0   1 graph.cc:1] fatal\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "F0000 00:00:1.0   1 graph.cc:1] fatal\nrestored\n"


def test_a_face_detector_starts_without_mediapipe_chatter():
    code = (
        "import numpy as np\n"
        "from mmer.faces import FaceDetector\n"
        "with FaceDetector() as detector:\n"
        "    detector.detect(np.zeros((64, 64, 3), np.uint8)); detector.detect(np.zeros((64, 64, 3), np.uint8))\n"
        "import sys; print('done', file=sys.stderr)\n"
    )
    # TensorFlow's own start-up lines are TF_CPP_MIN_LOG_LEVEL's job (mmer.logs.quiet_third_party);
    # no GLOG_minloglevel: the filter alone must hold MediaPipe's lines back
    env = {k: v for k, v in os.environ.items() if k != "GLOG_minloglevel"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr == "done\n"
