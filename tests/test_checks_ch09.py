"""Chapter 9's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and torchvision's transforms are caught
inside ``preprocess``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, verdict_tests
from PIL import Image
from torchvision import transforms as T

from cnncourse.checks import ch09


def preprocess(image: Image.Image, size: int, mean: Any, std: Any, *, rgb: bool = True,
               rounding: Any = round) -> torch.Tensor:
    if rgb:
        image = image.convert("RGB")
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = int(rounding((new_h - size) / 2.0)), int(rounding((new_w - size) / 2.0))
    image = image.crop((left, top, left + size, top + size))
    x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    x = x.view(size, size, -1).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


def _belongs(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def finetune_step(model: Any, images: Any, labels: Any, frozen: Any, lrs: Any, *,
                  freeze: bool = True, scale: float = 1.0) -> Any:
    named = list(model.named_parameters())
    for name, p in named:
        p.requires_grad = not (freeze and any(_belongs(name, f) for f in frozen))
    groups = [
        {"params": [p for n, p in named if _belongs(n, prefix) and p.requires_grad],
         "lr": lr * scale}
        for prefix, lr in lrs
    ]
    optimizer = torch.optim.SGD([g for g in groups if g["params"]])
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    return (
        [p.requires_grad for _, p in named],
        [(g["lr"], len(g["params"])) for g in optimizer.param_groups],
        [p.detach().clone() for _, p in named],
    )


def top_k(logits: torch.Tensor, classes: list[str], k: int, *, stable: bool = True) -> Any:
    out = []
    for row in logits:
        z = row - row.max() if stable else row
        p = z.exp() / z.exp().sum()
        order = sorted(range(len(classes)), key=lambda i: (-float(p[i]), i))[:k]
        out.append([(classes[i], float(p[i])) for i in order])
    return out


def torchvision_preprocess(image: Image.Image, size: int, mean: Any, std: Any) -> torch.Tensor:
    pipeline = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
    return pipeline(image.convert("RGB"))


SOLUTIONS = {
    "preprocess": (ch09.check_preprocess, preprocess),
    "finetune_step": (ch09.check_finetune_step, finetune_step),
    "top_k": (ch09.check_top_k, top_k),
}

WRONG: list[Wrong] = [
    (ch09.check_preprocess, lambda *a: preprocess(*a, rgb=False),
     ["preprocess raised RuntimeError", "RGBA image"]),
    (ch09.check_preprocess, lambda im, s, m, sd: preprocess(im, s, m, sd) * 255,
     ["preprocess returned wrong values for"]),
    (ch09.check_preprocess, lambda im, s, m, sd: preprocess(im, s, m, sd).double(),
     ["dtype torch.float64", "expected torch.float32"]),
    (ch09.check_preprocess, lambda im, s, m, sd: preprocess(im, s, m, sd)[None],
     ["preprocess returned shape (1, 3,"]),
    (ch09.check_finetune_step, lambda *a: finetune_step(*a, freeze=False),
     ["with requires_grad=True", "it should be frozen"]),
    (ch09.check_finetune_step, lambda *a: finetune_step(*a, scale=10.0),
     ["finetune_step has a param group"]),
    (ch09.check_finetune_step, lambda *a: finetune_step(*a)[2],
     ["should return a tuple (requires_grad flags, param-group summary, parameters)"]),
    (ch09.check_top_k, lambda *a: top_k(*a, stable=False),
     ["exp overflowed; subtract the row's maximum before exponentiating"]),
    (ch09.check_top_k, lambda lg, c, k: [[(n, p) for n, p in row] for row in
                                          [list(reversed(r)) for r in top_k(lg, c, k)]],
     ["at rank 1 of row 0"]),
    (ch09.check_top_k, lambda lg, c, k: [[(n, torch.tensor(p)) for n, p in r] for r in
                                          top_k(lg, c, k)],
     ["probability as a Python float) tuples, got torch.Tensor"]),
    (ch09.check_top_k, lambda lg, c, k: tuple(top_k(lg, c, k)),
     ["top_k should return a list with one list per row", "got tuple"]),
]

(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "09",
    SOLUTIONS,
    WRONG,
    [3, 4, 3],
    ["ex1-preprocess", "ex2-finetune_step", "ex3-top_k"],
    ending=None,
    tries=2,
)

FORBIDDEN = [
    Forbidden(ch09.PREPROCESS, torchvision_preprocess, "torchvision.transforms.functional.resize"),
    Forbidden(ch09.PREPROCESS, lambda im, s, m, sd: T.v2.functional.normalize(
        preprocess(im, s, (0.0,) * 3, (1.0,) * 3), m, sd),
        "torchvision.transforms.v2.functional.normalize"),
    Forbidden(ch09.PREPROCESS, ch09._pre_reference, "cnncourse.checks.ch09._pre_reference"),
]
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_ties_go_to_the_lower_class_index() -> None:
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0]], dtype=torch.float64)
    got = ch09._top_reference(logits, ["a", "b", "c", "d"], 3)
    assert [name for name, _ in got[0]] == ["b", "c", "a"]
