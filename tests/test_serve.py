"""cnncourse.serve: /health and /predict answer as documented; every bad upload (not an image
type, too large, undecodable, too many pixels, no file) gets a 4xx with one sentence, never a
500; a bundle exported to ONNX serves the same predictions, in-process (TestClient) and from a
real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

from cnncourse import serve

CLASSES = ["cat", "dog", "frog", "ship"]
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def png(size: tuple[int, int] = (20, 12), mode: str = "RGB") -> bytes:
    """A PNG of noise (noise does not compress, so a cut file misses pixel data)."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def flat_png(size: tuple[int, int]) -> bytes:
    """A PNG of one colour: tiny on disk, whatever its size in pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", size, 90).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model() -> TinyNet:
    return TinyNet().eval()


@pytest.fixture(scope="module")
def client(model: TinyNet) -> TestClient:
    app = serve.create_app(model, CLASSES, 16, MEAN, STD, max_bytes=50_000, max_pixels=100_000)
    return TestClient(app, raise_server_exceptions=False)


def test_health(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "classes": 4, "input_size": 16}


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_predict_returns_the_top3_of_the_models_softmax(
    client: TestClient, model: TinyNet, mode: str
) -> None:
    data = png(mode=mode)
    answer = client.post("/predict", files={"file": ("x.png", data, "image/png")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with torch.inference_mode():
        expected = model(serve.prepare(serve.decode_upload(data), 16, MEAN, STD))[0].softmax(0)
    top = expected.topk(3)
    assert [t["class"] for t in body["top3"]] == [CLASSES[i] for i in top.indices.tolist()]
    assert [t["probability"] for t in body["top3"]] == [round(p, 4) for p in top.values.tolist()]
    assert body["prediction"] == body["top3"][0]["class"] and body["filename"] == "x.png"


@pytest.mark.parametrize(
    ("upload", "status", "words"),
    [
        (("notes.txt", b"hello", "text/plain"), 415, "content type 'text/plain'"),
        (("x.png", b"\x89PNG not really", "image/png"), 400, "not an image that can be read"),
        (("x.png", png()[:200], "image/png"), 400, "not an image that can be read"),
        (("big.png", b"\x89PNG" + bytes(60_000), "image/png"), 413, "over the limit of 50,000 bytes"),
        (("wide.png", flat_png((400, 300)), "image/png"), 413, "400x300 pixels, over the limit"),
        (("x.bin", png(), "application/octet-stream"), 415, "takes an image"),
    ],
    ids=["text", "garbage", "truncated", "too-large", "too-many-pixels", "wrong-type"],
)
def test_bad_uploads_get_a_clear_4xx(
    client: TestClient, upload: tuple[str, bytes, str], status: int, words: str
) -> None:
    answer = client.post("/predict", files={"file": upload})
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert words in detail and detail.endswith(".") and "\n" not in detail


def test_no_file_is_fastapis_422(client: TestClient) -> None:
    assert client.post("/predict").status_code == 422
    assert client.post("/predict", data={"other": "x"}).status_code == 422


def test_a_decompression_bomb_is_refused_without_decoding(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, format="PNG")  # 144 M pixels, a small file
    answer = client.post("/predict", files={"file": ("bomb.png", buffer.getvalue(), "image/png")})
    assert answer.status_code == 413


def test_empty_classes_are_refused(model: TinyNet) -> None:
    with pytest.raises(ValueError, match="classes is empty"):
        serve.create_app(model, [], 16, MEAN, STD)


@pytest.fixture(scope="module")
def bundle(model: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    serve.save_bundle(model, folder, CLASSES, 16, MEAN, STD)
    return folder


def test_the_onnx_bundle_predicts_what_pytorch_predicts(
    bundle: Path, client: TestClient
) -> None:
    onnx_client = TestClient(serve.app_from_bundle(bundle), raise_server_exceptions=False)
    for size in ((20, 12), (7, 30)):
        files = {"file": ("x.png", png(size), "image/png")}
        got, want = onnx_client.post("/predict", files=files).json(), client.post(
            "/predict", files=files
        ).json()
        assert [t["class"] for t in got["top3"]] == [t["class"] for t in want["top3"]]
        for a, b in zip(got["top3"], want["top3"], strict=True):
            assert abs(a["probability"] - b["probability"]) <= 2e-4


def test_a_folder_without_a_bundle_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no model.onnx and no model.json"):
        serve.app_from_bundle(tmp_path)


def test_the_factory_needs_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNCOURSE_MODEL_DIR", raising=False)
    with pytest.raises(RuntimeError, match="CNNCOURSE_MODEL_DIR is not set"):
        serve.app_from_env()


def test_a_real_uvicorn_process_on_localhost(bundle: Path) -> None:
    with serve.running_server(bundle) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        good = httpx.post(f"{url}/predict", files={"file": ("x.png", png(), "image/png")})
        assert good.status_code == 200 and len(good.json()["top3"]) == 3
        bad = httpx.post(f"{url}/predict", files={"file": ("x.txt", b"hi", "text/plain")})
        assert bad.status_code == 415
        garbage = httpx.post(f"{url}/predict", files={"file": ("x.png", b"nope", "image/png")})
        assert garbage.status_code == 400


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="the server exited with status"),
        serve.running_server(tmp_path, timeout=60),
    ):
        pass
