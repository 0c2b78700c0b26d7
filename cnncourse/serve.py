"""Serving a trained classifier over HTTP with FastAPI: ``GET /health`` and ``POST /predict``.

A *bundle* is what ships: a folder holding ``model.onnx`` (the network, exported by
:func:`save_bundle`) and ``model.json`` (its class names and the preprocessing it expects:
input size, mean, standard deviation). :func:`create_app` serves any ``predict`` function;
:func:`app_from_bundle` serves a bundle with ONNX Runtime, and :func:`app_from_env` is the factory
a separate server process starts from::

    CNNCOURSE_MODEL_DIR=bundle python -m uvicorn --factory cnncourse.serve:app_from_env \\
        --host 127.0.0.1 --port 8000

``/predict`` takes one uploaded image (multipart form field ``file``) and answers with the top-3
classes and their probabilities. Bad uploads get a 4xx status with one sentence in ``detail``:
not an image type (415), too large in bytes or pixels (413), not a readable image (400); a
missing file is FastAPI's own 422.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError
from torch import nn

from cnncourse.pretrained import prepare

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "app_from_bundle",
    "app_from_env",
    "create_app",
    "decode_upload",
    "onnx_predictor",
    "running_server",
    "save_bundle",
    "top_classes",
]

MAX_BYTES = 5 * 1024 * 1024
"""The largest upload /predict reads (5 MiB)."""
MAX_PIXELS = 40_000_000
"""The largest image /predict decodes (width x height): a tiny file can claim a huge image."""
_CHUNK = 64 * 1024


def top_classes(logits: torch.Tensor, classes: Sequence[str], k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one logit vector, most probable first."""
    probabilities = torch.softmax(logits.double().flatten(), dim=0)
    values, indices = probabilities.topk(min(k, len(classes)))
    return [
        {"class": classes[int(i)], "probability": round(float(p), 4)}
        for p, i in zip(values, indices, strict=True)
    ]


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """An uploaded file's bytes as a uint8 RGB image tensor (1, 3, H, W).

    Raises:
        HTTPException: 400 if it is not a readable image, 413 if it has too many pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                if width * height > max_pixels:
                    raise HTTPException(
                        413,
                        f"the image is {width}x{height} pixels, over the limit of "
                        f"{max_pixels:,} pixels.",
                    )
                rgb = picture.convert("RGB")
    except HTTPException:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise HTTPException(413, "the image has too many pixels to decode safely.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise HTTPException(
            400, f"the file is not an image that can be read ({type(error).__name__})."
        ) from None
    array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


async def _read_limited(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, refusing (413) as soon as more than ``max_bytes`` arrive."""
    parts, total = [], 0
    while chunk := await upload.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise HTTPException(
                413, f"the file is over the limit of {max_bytes:,} bytes ({max_bytes // 1024} KiB)."
            )
        parts.append(chunk)
    return b"".join(parts)


def create_app(
    predict: Callable[[torch.Tensor], torch.Tensor],
    classes: Sequence[str],
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    title: str = "cnncourse classifier",
) -> FastAPI:
    """A FastAPI app serving ``predict`` (normalised float batch -> logits, one row per image).

    Each upload is decoded to RGB and prepared by :func:`cnncourse.pretrained.prepare` with
    ``size``, ``mean`` and ``std``, exactly as in training.
    """
    if not classes:
        raise ValueError("classes is empty, but the model needs at least one class name.")
    names = [str(c) for c in classes]
    app = FastAPI(title=title)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "classes": len(names), "input_size": size}

    @app.post("/predict")
    async def predict_upload(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        kind = (file.content_type or "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise HTTPException(
                415,
                f"the file has content type {kind or 'none'!r}, but /predict takes an image "
                "(image/png, image/jpeg, ...).",
            )
        image = decode_upload(await _read_limited(file, max_bytes), max_pixels)
        with torch.inference_mode():
            logits = predict(prepare(image, size, mean, std))
        top3 = top_classes(logits[0], names, 3)
        return {"prediction": top3[0]["class"], "top3": top3, "filename": file.filename}

    return app


def save_bundle(
    model: nn.Module,
    folder: str | os.PathLike[str],
    classes: Sequence[str],
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> Path:
    """Export ``model`` (in eval mode) to ``folder/model.onnx`` with a dynamic batch size, and
    write ``folder/model.json``; returns the ONNX file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.zeros(2, 3, size, size)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["image"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    assert program is not None
    path = folder / "model.onnx"
    program.save(str(path))
    config = {"classes": list(classes), "size": size, "mean": list(mean), "std": list(std)}
    (folder / "model.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def onnx_predictor(path: str | os.PathLike[str]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``predict`` function running an ONNX file with ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(batch: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run(None, {name: batch.numpy().astype(np.float32, copy=False)})
        return torch.from_numpy(logits)

    return predict


def app_from_bundle(folder: str | os.PathLike[str], **options: Any) -> FastAPI:
    """Serve a bundle written by :func:`save_bundle` (options as for :func:`create_app`).

    Raises:
        FileNotFoundError: if ``folder`` lacks ``model.onnx`` or ``model.json``.
    """
    folder = Path(folder)
    missing = [n for n in ("model.onnx", "model.json") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"folder is {str(folder)!r}, but it has no {' and no '.join(missing)}: write one "
            "with cnncourse.serve.save_bundle."
        )
    config = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    return create_app(
        onnx_predictor(folder / "model.onnx"),
        config["classes"],
        int(config["size"]),
        tuple(config["mean"]),
        tuple(config["std"]),
        **options,
    )


def app_from_env() -> FastAPI:
    """uvicorn's factory (``--factory cnncourse.serve:app_from_env``): serves the bundle in the
    folder named by the ``CNNCOURSE_MODEL_DIR`` environment variable.

    Raises:
        RuntimeError: if the variable is not set.
    """
    folder = os.environ.get("CNNCOURSE_MODEL_DIR")
    if not folder:
        raise RuntimeError(
            "CNNCOURSE_MODEL_DIR is not set, but it must name a bundle folder written by "
            "cnncourse.serve.save_bundle."
        )
    return app_from_bundle(folder)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(folder: str | os.PathLike[str], timeout: float = 60.0) -> Iterator[str]:
    """Start a real uvicorn process serving the bundle in ``folder`` on 127.0.0.1; yield its
    base URL (``http://127.0.0.1:<port>``) once ``/health`` answers; stop it afterwards.

    Raises:
        RuntimeError: if the server exits or does not answer within ``timeout`` seconds (its
            last output line is quoted).
    """
    port = _free_port()
    env = {**os.environ, "CNNCOURSE_MODEL_DIR": str(Path(folder).resolve())}
    command = [sys.executable, "-m", "uvicorn", "--factory", "cnncourse.serve:app_from_env",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = (process.stdout.read() if process.stdout else "").strip().splitlines()
                raise RuntimeError(
                    f"the server exited with status {process.returncode} before answering: "
                    f"{output[-1] if output else 'no output'}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on {url} did not answer within {timeout:g} s.")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
