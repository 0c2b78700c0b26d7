"""cnncourse.image_folder: a data set written as an ImageFolder reads back pixel for pixel; a
corrupt file and a non-image file each get one message and are skipped; a grayscale image comes
back as RGB; the split is stratified and keeps duplicate files on one side."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnncourse import image_folder

CLASSES = ("cat", "dog", "frog")


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (30, 3, 8, 8), generator=g, dtype=torch.uint8)
    return pixels, torch.arange(30) % 3


def test_png_round_trip_is_exact(tmp_path: Path, images: tuple[torch.Tensor, torch.Tensor]) -> None:
    pixels, labels = images
    paths = image_folder.export_image_folder(pixels, labels, CLASSES, tmp_path)
    assert paths[0] == tmp_path / "cat" / "img_00000.png"
    folder = image_folder.load_image_folder(tmp_path)
    got, got_labels = image_folder.folder_to_tensors(folder)
    order = [paths.index(Path(p)) for p, _ in folder.samples]
    assert torch.equal(got, pixels[order]) and torch.equal(got_labels, labels[order])


def test_bad_files_get_one_message_each_and_the_rest_loads(
    tmp_path: Path, images: tuple[torch.Tensor, torch.Tensor], capsys: pytest.CaptureFixture[str]
) -> None:
    pixels, labels = images
    paths = image_folder.export_image_folder(pixels, labels, CLASSES, tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(paths[0].read_bytes()[:100])
    (tmp_path / "dog" / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "frog" / "fake.jpg").write_bytes(b"this is no jpeg")
    folder = image_folder.load_image_folder(tmp_path)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(folder) == 30 and len(printed) == 3 == len(folder.problems.skipped)
    assert any(line.startswith("skipped cat/broken.png: not a readable image") for line in printed)
    assert "skipped dog/notes.txt: not an image file (extension '.txt')." in printed
    assert any(line.startswith("skipped frog/fake.jpg: not a readable image") for line in printed)
    image_folder.folder_to_tensors(folder)  # every remaining file decodes


def test_grayscale_and_rgba_images_load_as_rgb(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    Image.new("L", (5, 4), 77).save(tmp_path / "a" / "gray.png")
    Image.new("RGBA", (5, 4), (1, 2, 3, 4)).save(tmp_path / "a" / "alpha.png")
    folder = image_folder.load_image_folder(tmp_path)
    assert folder.problems.converted == {"L": 1, "RGBA": 1}
    modes = {folder[i][0].mode for i in range(len(folder))}
    assert modes == {"RGB"}
    pixels, _ = image_folder.folder_to_tensors(folder)
    gray = pixels[[Path(p).name for p, _ in folder.samples].index("gray.png")]
    assert gray.shape == (3, 4, 5) and bool((gray == 77).all())


def test_split_is_stratified_and_keeps_duplicates_together(
    tmp_path: Path, images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    pixels, labels = images
    paths = image_folder.export_image_folder(pixels, labels, CLASSES, tmp_path)
    for k in range(3):  # three copies of one cat photo
        shutil.copy(paths[0], tmp_path / "cat" / f"copy{k}.png")
    folder = image_folder.load_image_folder(tmp_path)
    for seed in range(10):
        train, val = image_folder.leakage_free_split(folder.samples, 0.2, seed=seed)
        assert sorted(train + val) == list(range(len(folder)))
        digests = lambda idx: {image_folder._digest(folder.samples[i][0]) for i in idx}
        assert not digests(train) & digests(val)
        per_class = torch.bincount(torch.tensor([folder.samples[i][1] for i in val]), minlength=3)
        assert per_class[1:].tolist() == [2, 2]  # 20% of 10 dogs, of 10 frogs
        assert 3 <= per_class[0] <= 6  # want 3 of 13 cats; the 4 copies move as one group


def test_mixed_sizes_need_a_size(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    Image.new("RGB", (5, 4)).save(tmp_path / "a" / "small.png")
    Image.new("RGB", (9, 9)).save(tmp_path / "a" / "big.png")
    folder = image_folder.load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="pass size= to resize them all"):
        image_folder.folder_to_tensors(folder)
    pixels, _ = image_folder.folder_to_tensors(folder, size=6)
    assert pixels.shape == (2, 3, 6, 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: image_folder.export_image_folder(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), CLASSES, p),
         "images is a torch.float32 tensor"),
        (lambda p: image_folder.export_image_folder(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 5]), CLASSES, p),
         r"labels must lie in \[0, 3\)"),
        (lambda p: image_folder.export_image_folder(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), CLASSES, p, image_format="gif"),
         "image_format is 'gif'"),
        (lambda p: image_folder.load_image_folder(p / "nowhere"), "there is no folder there"),
        (lambda p: image_folder.leakage_free_split([], 1.5), "val_fraction is 1.5"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, call: object, message: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        call(tmp_path)  # type: ignore[operator]
