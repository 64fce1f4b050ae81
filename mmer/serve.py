"""``mmer serve``: a warm prediction service, its JSON API and a web page.

One :class:`~mmer.predictor.Predictor` is loaded when the service starts and answers every
request, so a clip costs the prediction alone (about 0.25 s on 2 cores) instead of the 11-13 s
of a cold ``mmer predict``.

- ``POST /predict``: an uploaded clip -> the JSON object of ``mmer predict --json``;
- ``POST /annotate``: an uploaded clip -> the annotated mp4 (:mod:`mmer.annotate`);
- ``GET /health``: the model, its labels, the limits and how busy the service is;
- ``GET /``: the page (``mmer/static/index.html``: upload, record from camera, results).

An upload is either the raw request body or the ``file`` part of a ``multipart/form-data``
form. The service reads untrusted bytes, so it is safe by construction:

- the body is streamed into a private folder (``mkdtemp``, mode 0700) under a fixed name,
  counted as it arrives and refused with 413 past ``max_upload_bytes``; the folder is removed
  whatever happens. The client's file name is only ever echoed back as text, never a path;
- what the bytes are is found by probing them (:func:`mmer.media.probe`), never from a name
  or a content type; a clip longer than ``max_duration_s`` is refused with 413;
- one worker thread runs the model (a :class:`Predictor` is not thread-safe) and at most
  ``queue`` more requests wait: any further request gets 503 at once, before its body is read;
- every error is a JSON object ``{"error", "kind", "status"}`` with no traceback and no
  server path: 413 too large or too long, 422 not a usable clip (unreadable, no speech, no
  face, a modality the model lacks), 408 an upload that takes longer than ``upload_timeout_s``,
  503 busy, 500 a failure of the service itself (logged with its traceback).

ffmpeg always runs from argument lists (:mod:`mmer.media`, :mod:`mmer.annotate`).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.resources
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmer import __version__
from mmer.errors import ConfigError, MediaError, MmerError, ModelError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 50.0
DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_QUEUE = 4
DEFAULT_UPLOAD_TIMEOUT_S = 120.0
MB = 1024 * 1024
# a multipart body carries boundaries and part headers around the file: this much is allowed on top
MULTIPART_SLACK = 16 * 1024
UPLOAD_NAME = "upload"  # the one name an upload is stored under
ANNOTATED_NAME = "annotated.mp4"
REMUXED_NAME = "remuxed.mkv"  # a clip without a duration, copied into a container that records one
REMUX_TIMEOUT_S = 60.0
MAX_SHOWN_NAME = 120  # characters of the client's file name echoed back
PAGE = "static/index.html"
WARM_UP_SIZE = (320, 240)  # the generated clip of the warm-up prediction
PAGE_HEADERS = {
    # the page needs nothing from elsewhere; blob: URLs play the annotated video and the camera preview
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "media-src 'self' blob:; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclasses.dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the service.

    Attributes
    ----------
    max_upload_bytes : int
        Largest upload (the file itself); larger ones get 413.
    max_duration_s : float
        Longest clip, as its container says; longer ones get 413.
    queue : int
        Requests that may wait while one is worked on; more get 503.
    upload_timeout_s : float
        Seconds an upload may take to arrive; slower ones get 408.
    """

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * MB)
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    queue: int = DEFAULT_QUEUE
    upload_timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise ConfigError(f"serve: the upload limit must be positive, not {self.max_upload_bytes} bytes")
        if not self.max_duration_s > 0:
            raise ConfigError(f"serve: the duration limit must be positive, not {self.max_duration_s} s")
        if self.queue < 0:
            raise ConfigError(f"serve: the queue must be 0 or more, not {self.queue}")
        if not self.upload_timeout_s > 0:
            raise ConfigError(f"serve: the upload timeout must be positive, not {self.upload_timeout_s} s")

    @property
    def capacity(self) -> int:
        """Requests admitted at once: the one worked on and those waiting."""
        return 1 + self.queue

    def to_json(self) -> dict[str, Any]:
        return {
            "max_upload_mb": round(self.max_upload_bytes / MB, 3),
            "max_duration_s": self.max_duration_s,
            "queue": self.queue,
            "upload_timeout_s": self.upload_timeout_s,
        }


class RequestFailed(Exception):
    """An answer other than success: the HTTP status, a kind and a message for the client."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "kind": self.kind, "status": self.status}


def shown_name(filename: str | None) -> str:
    """The client's file name as text to echo back: its last component, printable, short.

    Never used to build a path.
    """
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:MAX_SHOWN_NAME] or UPLOAD_NAME


# ---------------------------------------------------------------------- receiving an upload


class _FilePart:
    """Streams the ``file`` part of a multipart body into an open file (python-multipart callbacks)."""

    def __init__(self, boundary: bytes, sink: Callable[[bytes], None]) -> None:
        from python_multipart.multipart import MultipartParser

        self.sink = sink
        self.filename: str | None = None
        self.found = False
        self._active = self._done = False
        self._field = self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and not self._done:
            self._active = self.found = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._active:
            self.sink(data[start:end])

    def _part_end(self) -> None:
        if self._active:
            self._active, self._done = False, True

    def feed(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def finish(self) -> None:
        self.parser.finalize()


async def receive_upload(request: Request, target: Path, limits: ServeLimits) -> str:
    """Stream the request's upload into ``target`` (created, mode 0600); returns the name to show.

    Raises
    ------
    RequestFailed
        413 over ``limits.max_upload_bytes`` (from Content-Length, or counted as it arrives),
        422 a form without a ``file`` part, 408 too slow. (An empty upload is left to the probe.)
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import parse_options_header

    limit = limits.max_upload_bytes
    too_large = RequestFailed(413, "TooLarge", f"the upload is larger than the limit of {limit / MB:.3g} MB")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + MULTIPART_SLACK:
        raise too_large
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    received = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:

        def sink(data: bytes) -> None:
            nonlocal received
            received += len(data)
            if received > limit:
                raise too_large
            out.write(data)

        form = None
        if content_type == b"multipart/form-data":
            if not options.get(b"boundary"):
                raise RequestFailed(422, "BadForm", "a multipart/form-data body without a boundary")
            form = _FilePart(options[b"boundary"], sink)
        try:
            body_bytes = 0  # a form's other parts are not kept, but they count
            async with asyncio.timeout(limits.upload_timeout_s):
                async for chunk in request.stream():
                    body_bytes += len(chunk)
                    if body_bytes > limit + MULTIPART_SLACK:
                        raise too_large
                    if form:
                        form.feed(chunk)
                    else:
                        sink(chunk)
            if form:
                form.finish()
        except TimeoutError as err:
            raise RequestFailed(
                408, "UploadTimeout", f"the upload took longer than {limits.upload_timeout_s:g} s"
            ) from err
        except MultipartParseError as err:
            raise RequestFailed(422, "BadForm", f"unreadable multipart/form-data body: {err}") from err
    if form is not None and not form.found:
        raise RequestFailed(422, "BadForm", "the form has no part named 'file'")
    return shown_name(form.filename if form else request.headers.get("x-filename"))


# ---------------------------------------------------------------------- the service


class Service:
    """The warm predictor, its one worker thread, the admission count and the private upload folder."""

    def __init__(self, predictor: Any, limits: ServeLimits) -> None:
        self.predictor = predictor
        self.limits = limits
        self.busy = 0  # requests admitted and not yet answered (changed on the event loop only)
        self.served = 0
        self.root = Path(tempfile.mkdtemp(prefix="mmer-serve-"))  # mode 0700
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmer-predict")

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def health(self) -> dict[str, Any]:
        predictor = self.predictor
        return {
            "status": "ok",
            "version": __version__,
            "model": dict(predictor.model_id),
            "labels": list(predictor.label_names),
            "inputs": predictor.model_inputs,
            "limits": self.limits.to_json(),
            "busy": self.busy,
            "capacity": self.limits.capacity,
            "served": self.served,
        }

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[Path]:
        """A slot (503 when none is free) and a private folder for one request, removed afterwards."""
        if self.busy >= self.limits.capacity:
            raise RequestFailed(
                503, "Busy", f"the service is busy ({self.busy} requests in progress or waiting); try again shortly"
            )
        self.busy += 1
        folder = Path(tempfile.mkdtemp(prefix="req-", dir=self.root))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self.busy -= 1
            self.served += 1

    async def in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` on the worker thread. If the request is cancelled meanwhile, the work
        still ends before the request's folder is removed and its slot freed."""
        work = asyncio.get_running_loop().run_in_executor(self._worker, func, *args)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])
            raise

    # -------------------------------------------------------------- blocking work (the worker thread)

    def _predict(self, upload: Path, shown: str) -> tuple[Any, Path]:
        """The prediction of the uploaded clip and the file it was made from (the upload, or its remuxed copy)."""
        from mmer import media

        clip = upload
        try:
            info = media.probe(clip)
            if info.duration_s is None:  # a live recording (MediaRecorder's WebM) says none
                clip, info = with_duration(clip)
            if info.duration_s > self.limits.max_duration_s:
                raise RequestFailed(
                    413,
                    "TooLong",
                    f"{shown}: the clip lasts {info.duration_s:.1f} s, longer than the limit of {self.limits.max_duration_s:g} s",
                )
            prediction = self.predictor.predict(clip, info=info)  # probed once, here
        except MmerError as err:
            raise client_error(err, upload, shown) from err
        finally:
            forget_span(self.predictor)
        prediction.path = shown
        return prediction, clip

    def predict(self, upload: Path, shown: str) -> dict[str, Any]:
        return self._predict(upload, shown)[0].to_json()

    def annotate(self, upload: Path, shown: str) -> bytes:
        prediction, clip = self._predict(upload, shown)
        if prediction.input_kind == "audio":
            raise RequestFailed(422, "NoVideo", f"{shown}: an audio-only clip: no video to annotate")
        out = upload.parent / ANNOTATED_NAME
        prediction.path = str(clip)  # annotate reads the clip again
        try:
            self.predictor.annotate(prediction, out)
        except MmerError as err:
            raise client_error(err, upload, shown) from err
        return out.read_bytes()


def warm_up(predictor: Any) -> None:
    """Predict one generated clip (a sample-corpus face and voice, :mod:`mmer.synth`), so the first
    client does not wait for what a first prediction does once: TensorFlow tracing the model, the
    face detector's and the audio code's first calls. Best effort: a failure is logged, not raised."""
    from mmer.synth.corpus import ClipSpec, encode_clip, render_clip

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mmer-warm-") as folder:
        clip = Path(folder) / "warm-up.mp4"
        try:
            encode_clip(
                render_clip(ClipSpec(1, 3, 1, 1, 1), seed=0, width=WARM_UP_SIZE[0], height=WARM_UP_SIZE[1]), clip
            )
            predictor.predict(clip)
        except MmerError as err:
            logger.warning("warm-up prediction failed (the first request will be slower): %s", err)
        finally:
            forget_span(predictor)
    logger.info("warmed up in %.1f s", time.perf_counter() - started)


def forget_span(predictor: Any) -> None:
    """Delete the speech-span wav the predictor leaves in its own temporary folder (the last client's voice)."""
    predictor.forget_span()


def with_duration(path: Path) -> tuple[Path, Any]:
    """A clip whose container gives no duration, copied (not re-encoded) into Matroska beside it,
    which records one; the copy and its probe. The duration limit can then be checked before
    anything is decoded.

    Raises
    ------
    MediaError
        ffmpeg cannot copy the streams, or the copy still has no duration.
    """
    import subprocess

    from mmer import media

    copy = path.parent / REMUXED_NAME
    try:
        done = subprocess.run(
            [media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
            + ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-f", "matroska", str(copy)],
            capture_output=True,
            timeout=REMUX_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MediaError(f"{path}: cannot copy the streams to read the duration: {err}") from err
    if done.returncode:
        raise MediaError(
            f"{path}: cannot copy the streams to read the duration: {media._stderr_reason(done.stderr, path)}"
        )
    info = media.probe(copy)
    if info.duration_s is None:
        raise MediaError(f"{path}: the duration cannot be read")
    return copy, info


def client_error(err: MmerError, path: Path, shown: str) -> RequestFailed:
    """An mmer error as the client's answer: 422 for the clip's faults, 500 for the model's; the
    request folder's files (``path`` is the upload) named by ``shown``."""
    message = str(err)
    for name in (UPLOAD_NAME, REMUXED_NAME, ANNOTATED_NAME):
        message = message.replace(str(path.parent / name), shown)
    message = message.replace(str(path.parent), "")
    status = 500 if isinstance(err, ModelError) else 422
    if not isinstance(err, MediaError | ConfigError | ModelError):
        logger.warning("%s", err)
    return RequestFailed(status, type(err).__name__, message)


def page_html() -> str:
    """The web page (mmer/static/index.html)."""
    return importlib.resources.files("mmer").joinpath(PAGE).read_text(encoding="utf-8")


def create_app(predictor: Any, *, limits: ServeLimits = ServeLimits()) -> FastAPI:
    """The FastAPI app serving ``predictor`` (loaded by the caller, used by one worker thread).

    The app's private upload folder is created here and removed when the app shuts down.
    """
    service = Service(predictor, limits)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="mmer", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    page = page_html()

    def failed(err: RequestFailed) -> JSONResponse:
        return JSONResponse(err.to_json(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return failed(RequestFailed(exc.status_code, "HTTPError", str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return failed(RequestFailed(422, "BadRequest", "; ".join(str(e.get("msg")) for e in exc.errors())))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected %s", type(exc).__name__, exc_info=exc)
        return failed(RequestFailed(500, "InternalError", "the service failed on this request; see its log"))

    async def handle(request: Request, work: Callable[[Path, str], Any], answer: Callable[[Any], Response]) -> Response:
        started = time.perf_counter()
        shown = UPLOAD_NAME
        try:
            async with service.admitted() as folder:
                upload = folder / UPLOAD_NAME
                shown = await receive_upload(request, upload, limits)
                response = answer(await service.in_worker(work, upload, shown))
        except RequestFailed as err:
            logger.info(
                "%s %s: %d %s (%.2f s)", request.url.path, shown, err.status, err.message, time.perf_counter() - started
            )
            return failed(err)
        logger.info("%s %s: 200 (%.2f s)", request.url.path, shown, time.perf_counter() - started)
        return response

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        return await handle(request, service.predict, JSONResponse)

    @app.post("/annotate")
    async def annotate(request: Request) -> Response:
        return await handle(
            request,
            service.annotate,
            lambda video: Response(
                video, media_type="video/mp4", headers={"Content-Disposition": f'inline; filename="{ANNOTATED_NAME}"'}
            ),
        )

    return app


# ---------------------------------------------------------------------- command line


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``mmer serve``."""
    from mmer.predictor import DEFAULT_MODEL, DEFAULT_PARAMS

    parser.description = (
        "Serve a warm model over HTTP: POST /predict (a clip -> the JSON of mmer predict --json), POST /annotate "
        "(a clip -> the annotated mp4), GET /health, and a web page at / (upload a clip or record from the camera)."
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"trained model (.keras) with its .json beside it [default: {DEFAULT_MODEL} when it exists, "
        "else the model shipped with mmer (docs/model-card.md)]",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (0.0.0.0 exposes the service to the network)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port")
    parser.add_argument(
        "--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help="largest upload; larger ones get 413"
    )
    parser.add_argument(
        "--max-duration-s", type=float, default=DEFAULT_MAX_DURATION_S, help="longest clip; longer ones get 413"
    )
    parser.add_argument(
        "--queue", type=int, default=DEFAULT_QUEUE, help="requests that may wait for the one worker; more get 503"
    )
    parser.add_argument(
        "--upload-timeout-s", type=float, default=DEFAULT_UPLOAD_TIMEOUT_S, help="seconds an upload may take to arrive"
    )
    parser.add_argument(
        "--params",
        default=str(DEFAULT_PARAMS),
        help="params file whose span section sets the speech span (when it exists and model.json records none)",
    )
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads (0: TensorFlow's choice)")


def run(args: argparse.Namespace) -> int:
    """Run ``mmer serve`` until interrupted."""
    import uvicorn

    from mmer.predict_cli import make_predictor

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, not {args.port}")
    limits = ServeLimits(
        max_upload_bytes=int(args.max_upload_mb * MB),
        max_duration_s=args.max_duration_s,
        queue=args.queue,
        upload_timeout_s=args.upload_timeout_s,
    )
    with make_predictor(args.model, params=args.params, threads=args.threads) as predictor:
        warm_up(predictor)
        app = create_app(predictor, limits=limits)
        logger.info("serving %s on http://%s:%d/ (Ctrl-C stops)", predictor.model_path, args.host, args.port)
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, server_header=False)
    return 0
