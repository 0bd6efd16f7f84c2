"""Both readouts on synthetic spike counts (spec §4)."""

from __future__ import annotations

import numpy as np

from symstdp_genn.encoding import input_rates, one_hot
from symstdp_genn.evaluation import (
    SILENT,
    assign_neurons,
    assignment_predictions,
    class_responses,
    confusion_matrix,
    score,
    supervised_predictions,
)


def test_supervised_readout_is_argmax_with_silence_counted_as_wrong() -> None:
    counts = np.array([[0, 3, 1, 0, 0, 0, 0, 0, 0, 0],
                       [0] * 10,
                       [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]])  # tie → lowest index
    np.testing.assert_array_equal(supervised_predictions(counts), [1, SILENT, 0])
    result = score(np.array([1, 0, 0]), np.ones((3, 4)), counts, np.zeros(4, np.int16),
                   np.zeros(3), np.zeros(3, bool), 1.0)
    assert result.supervised_accuracy == 2 / 3  # the silent sample is wrong, not class 0
    assert result.silent_fraction == 1 / 3


def test_neurons_take_the_label_with_the_highest_mean_response() -> None:
    hidden = np.array([[4, 0, 0],   # label 0
                       [2, 0, 0],   # label 0
                       [0, 5, 0],   # label 1
                       [3, 1, 0]])  # label 2
    labels = np.array([0, 0, 1, 2])
    sums = class_responses(hidden, labels)
    assert sums.shape == (3, 10)
    np.testing.assert_array_equal(sums[0, :3], [6, 0, 3])
    assignments = assign_neurons(sums, np.bincount(labels, minlength=10))
    # neuron 0: mean 3 for label 0, 3 for label 2 → first (0); neuron 2 never fired
    np.testing.assert_array_equal(assignments, [0, 1, SILENT])


def test_assignment_readout_averages_per_class_and_skips_empty_classes() -> None:
    assignments = np.array([3, 3, 7, SILENT], np.int16)
    hidden = np.array([[1, 1, 5, 9],    # class 3 mean 1, class 7 mean 5 → 7
                       [4, 2, 2, 0],    # class 3 mean 3 → 3
                       [0, 0, 0, 9]])   # only the unassigned neuron fired → silent
    np.testing.assert_array_equal(assignment_predictions(hidden, assignments), [7, 3, SILENT])


def test_confusion_matrix_has_a_silent_column() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, SILENT, 2, 2]))
    assert cm.shape == (10, 11)
    assert cm[0, 0] == 1 and cm[0, 10] == 1 and cm[1, 2] == 1 and cm[2, 2] == 1
    assert cm.sum() == 4


def test_rates_follow_pixel_times_intensity_over_eight() -> None:
    img = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(input_rates(img, 2.0), [[0.0, 32.0, 63.75]])
    np.testing.assert_allclose(input_rates(np.vstack([img, img]), np.array([2.0, 4.0]))[1],
                               [0.0, 64.0, 127.5])
    np.testing.assert_array_equal(one_hot(np.array([2]), 200.0)[0],
                                  [0, 0, 200, 0, 0, 0, 0, 0, 0, 0])
