"""Plots: each returns a Figure with the expected axes and images; bad shapes are refused."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cnncourse import viz
from cnncourse.training import History, Metrics

plt.switch_backend("Agg")  # never open a window


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def images_in(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.images]


def history(epochs: int, with_val: bool) -> History:
    record = History()
    for epoch in range(1, epochs + 1):
        val = Metrics(1.0 / epoch, 0.5) if with_val else None
        record.append(epoch, Metrics(2.0 / epoch, 0.1 * epoch), val, 0.1)
    return record


# --- show_images -----------------------------------------------------------------------------


def test_show_images_grid_of_grey_images_with_labels() -> None:
    batch = torch.rand(10, 1, 28, 28)
    fig = viz.show_images(batch, labels=list(range(10)), title="digits")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 16  # 2 rows of 8
    shown = images_in(fig)
    assert len(shown) == 10
    assert shown[0].get_array().shape == (28, 28)
    assert [ax.get_title() for ax in fig.axes[:10]] == [str(k) for k in range(10)]
    assert fig._suptitle is not None and fig._suptitle.get_text() == "digits"


def test_show_images_colour_and_rescaling() -> None:
    images = [torch.randn(3, 8, 8) * 5 for _ in range(3)]  # outside [0, 1]: rescaled
    fig = viz.show_images(images, ncols=2)
    assert len(fig.axes) == 4
    shown = images_in(fig)
    assert len(shown) == 3
    array = np.asarray(shown[0].get_array())
    assert array.shape == (8, 8, 3)
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert array.max() == pytest.approx(1.0, abs=1e-6) and array.min() == pytest.approx(0.0)


def test_show_images_keeps_values_already_in_range() -> None:
    image = torch.full((4, 4), 0.25)
    fig = viz.show_images([image])
    np.testing.assert_allclose(np.asarray(images_in(fig)[0].get_array()), 0.25)


def test_show_images_rejects_empty_input_and_wrong_label_count() -> None:
    with pytest.raises(ValueError, match="images is empty"):
        viz.show_images([])
    with pytest.raises(ValueError, match="labels has 2 entries but images has 3"):
        viz.show_images(torch.rand(3, 1, 4, 4), labels=["a", "b"])


# --- plot_history ----------------------------------------------------------------------------


@pytest.mark.parametrize(("with_val", "lines"), [(True, 2), (False, 1)])
def test_plot_history_draws_loss_and_accuracy(with_val: bool, lines: int) -> None:
    fig = viz.plot_history(history(4, with_val), title="run")
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "accuracy"
    assert len(loss_ax.lines) == lines and len(acc_ax.lines) == lines
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [2.0, 1.0, 2 / 3, 0.5])
    np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), [1, 2, 3, 4])


@pytest.mark.parametrize("epochs", [2, 3, 5])
def test_plot_history_ticks_whole_epochs_only(epochs: int) -> None:
    fig = viz.plot_history(history(epochs, True))
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_plot_history_refuses_an_empty_history() -> None:
    with pytest.raises(ValueError, match="history is empty"):
        viz.plot_history(History())


# --- confusion matrices ----------------------------------------------------------------------


def test_confusion_matrix_counts_a_hand_example() -> None:
    targets = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    matrix = viz.confusion_matrix(targets, predictions, 3)
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(matrix, expected)
    assert matrix.sum() == 6 and matrix.trace() == 4


def test_confusion_matrix_accepts_lists_and_empty_input() -> None:
    assert viz.confusion_matrix([1, 1], [1, 0], 2).tolist() == [[0, 0], [1, 1]]
    empty = viz.confusion_matrix(torch.tensor([]), torch.tensor([]), 2)
    assert torch.equal(empty, torch.zeros(2, 2, dtype=torch.long))


def test_confusion_matrix_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError) as info:
        viz.confusion_matrix(torch.tensor([0, 1, 2]), torch.zeros(3, 3), 3)
    assert "targets has shape (3,) but predictions has (3, 3)" in str(info.value)


@pytest.mark.parametrize(
    ("targets", "predictions", "name"),
    [
        ([0, 3], [0, 1], "targets"),
        ([0, 1], [-1, 1], "predictions"),
        ([0, 1], [0, 5], "predictions"),
    ],
)
def test_confusion_matrix_rejects_labels_out_of_range(targets, predictions, name) -> None:
    with pytest.raises(ValueError, match=rf"^{name} holds labels outside 0\.\.2\.$"):
        viz.confusion_matrix(torch.tensor(targets), torch.tensor(predictions), 3)


def test_confusion_matrix_rejects_two_dimensional_labels() -> None:
    with pytest.raises(ValueError, match="one label per item"):
        viz.confusion_matrix(torch.zeros(2, 2), torch.zeros(2, 2), 2)


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "3"])
def test_confusion_matrix_rejects_a_bad_class_count(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"^num_classes is {bad!r}, but it must be a positive"):
        viz.confusion_matrix(torch.tensor([0]), torch.tensor([0]), bad)  # type: ignore[arg-type]


def test_plot_confusion_matrix_draws_counts() -> None:
    matrix = torch.tensor([[5, 1], [0, 7]])
    fig = viz.plot_confusion_matrix(matrix, ["cat", "dog"], title="pets")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert sorted(text.get_text() for text in ax.texts) == ["0", "1", "5", "7"]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["cat", "dog"]
    assert ax.get_title() == "pets"


def test_plot_confusion_matrix_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"matrix has shape \(2, 2\) but there are 3 class names"):
        viz.plot_confusion_matrix(torch.zeros(2, 2), ["a", "b", "c"])


# --- filters and feature maps ----------------------------------------------------------------


def test_show_filters_colour_for_rgb_filters() -> None:
    fig = viz.show_filters(torch.randn(6, 3, 5, 5))
    shown = images_in(fig)
    assert len(shown) == 6
    assert np.asarray(shown[0].get_array()).shape == (5, 5, 3)


def test_show_filters_first_channel_otherwise() -> None:
    weight = torch.randn(4, 16, 3, 3, requires_grad=True)  # straight from a layer
    fig = viz.show_filters(weight, ncols=2)
    assert len(fig.axes) == 4
    shown = images_in(fig)
    assert len(shown) == 4
    assert np.asarray(shown[0].get_array()).shape == (3, 3)


@pytest.mark.parametrize("shape", [(3, 5, 5), (5, 5), (1, 2, 3, 4, 5)])
def test_show_filters_rejects_non_conv_weights(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as info:
        viz.show_filters(torch.zeros(shape))
    assert f"weight has shape {shape}" in str(info.value)
    assert "4 dimensions" in str(info.value)


@pytest.mark.parametrize("shape", [(20, 8, 8), (1, 20, 8, 8)])
def test_show_feature_maps_limits_the_channels(shape: tuple[int, ...]) -> None:
    fig = viz.show_feature_maps(torch.randn(shape), limit=16)
    shown = images_in(fig)
    assert len(shown) == 16
    assert len(fig.axes) == 16
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "ch 0" and titles[15] == "ch 15"


def test_show_feature_maps_with_few_channels() -> None:
    fig = viz.show_feature_maps(torch.randn(3, 4, 4), ncols=3)
    assert len(images_in(fig)) == 3
    assert all(np.asarray(image.get_array()).shape == (4, 4) for image in images_in(fig))


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (8, 8), (4,)])
def test_show_feature_maps_rejects_batches_and_flat_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as info:
        viz.show_feature_maps(torch.zeros(shape))
    assert f"activation has shape {shape}" in str(info.value)
    assert "(C, H, W)" in str(info.value)


def test_grid_shape() -> None:
    assert viz._grid(10, None) == (2, 8)
    assert viz._grid(3, None) == (1, 3)
    assert viz._grid(7, 3) == (math.ceil(7 / 3), 3)
