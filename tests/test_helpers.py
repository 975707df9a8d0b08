"""reducer, build_montages (against imutils itself) and make_montage."""

from __future__ import annotations

import cv2
import imutils
import numpy as np
import pytest

from netgear.errors import OptionError, PayloadError
from netgear.helpers import build_montages, make_montage, reducer, to_bgr


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> np.ndarray:
    return np.full((size[1], size[0], 3), colour, np.uint8)


def noisy(size: tuple[int, int] = (64, 48), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)


# -- reducer -----------------------------------------------------------------------------


def test_reducer_shrinks_like_the_seed_example() -> None:
    frame = noisy((200, 100))
    smaller = reducer(frame, percentage=30)  # "reduce frame by 30%"
    assert smaller.shape == (70, 140, 3) and smaller.dtype == np.uint8
    assert reducer(frame, 90).shape == (10, 20, 3)
    assert reducer(frame, 12.5, interpolation=cv2.INTER_AREA).shape == (87, 175, 3)
    assert reducer(frame[:, :, 0], 50).shape == (50, 100)
    tiny = reducer(np.zeros((3, 3, 3), np.uint8), 90)
    assert tiny.shape == (1, 1, 3)


@pytest.mark.parametrize("percentage", [0, -5, 90.5, 100, "30", True, None])
def test_reducer_rejects_bad_percentages(percentage: object) -> None:
    with pytest.raises(OptionError, match="percentage") as info:
        reducer(noisy(), percentage)
    assert isinstance(info.value, ValueError)  # vidgear raised ValueError here


def test_reducer_rejects_things_that_are_not_frames() -> None:
    with pytest.raises(PayloadError, match="None"):
        reducer(None, 30)
    with pytest.raises(PayloadError, match="list"):
        reducer([[1, 2], [3, 4]], 30)
    with pytest.raises(PayloadError, match="shape"):
        reducer(np.zeros((2, 2, 2, 2), np.uint8), 30)
    with pytest.raises(OptionError, match="interpolation"):
        reducer(noisy(), 30, interpolation="lanczos")


# -- build_montages ----------------------------------------------------------------------


def test_build_montages_matches_imutils_exactly() -> None:
    images = [noisy(seed=i) for i in range(5)]
    ours = build_montages(images, (64, 48), (2, 2))
    theirs = imutils.build_montages(images, (64, 48), (2, 2))
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape == (96, 128, 3)
        assert np.array_equal(a, b)
    # a full last montage: imutils does not add an empty one, neither do we
    assert len(build_montages(images[:4], (64, 48), (2, 2))) == 1
    assert len(imutils.build_montages(images[:4], (64, 48), (2, 2))) == 1


def test_build_montages_seed_usage_with_dict_values() -> None:
    frame_dict = {"5566": solid((0, 0, 255)), "5567": solid((0, 255, 0), (32, 24))}
    (h, w) = frame_dict["5566"].shape[:2]
    montages = build_montages(frame_dict.values(), (w, h), (2, 1))
    assert len(montages) == 1 and montages[0].shape == (48, 128, 3)
    assert tuple(montages[0][10, 10]) == (0, 0, 255) and tuple(montages[0][10, 100]) == (0, 255, 0)


def test_build_montages_mixed_sizes_grey_and_bgra() -> None:
    grey = np.full((10, 20), 200, np.uint8)
    bgra = np.dstack([solid((255, 0, 0), (40, 30)), np.full((30, 40), 7, np.uint8)])
    single = np.full((5, 5, 1), 9, np.uint8)
    (montage,) = build_montages([grey, bgra, single], (16, 16), (3, 1))
    assert montage.shape == (16, 48, 3)
    assert tuple(montage[8, 8]) == (200, 200, 200)
    assert tuple(montage[8, 24]) == (255, 0, 0)
    assert tuple(montage[8, 40]) == (9, 9, 9)


def test_build_montages_edge_cases() -> None:
    (empty,) = build_montages([], (10, 10), (2, 2))
    assert empty.shape == (20, 20, 3) and not empty.any()
    with pytest.raises(OptionError, match="image_shape"):
        build_montages([noisy()], (10,), (2, 2))
    with pytest.raises(OptionError, match="montage_shape"):
        build_montages([noisy()], (10, 10), (0, 2))
    with pytest.raises(PayloadError):
        build_montages(["not an image"], (10, 10), (1, 1))
    with pytest.raises(PayloadError, match="uint8"):
        build_montages([np.zeros((4, 4, 3), np.float32)], (10, 10), (1, 1))


# -- make_montage ------------------------------------------------------------------------


def test_make_montage_grid_labels_and_missing_streams() -> None:
    frames = {"cam-a": solid((0, 0, 255)), "cam-b": solid((0, 255, 0), (320, 240)),
              "cam-c": None}
    image = make_montage(frames, tile=(80, 60))
    assert image.shape == (120, 160, 3)  # 3 streams -> 2 x 2 grid
    assert tuple(image[50, 40]) == (0, 0, 255)  # below the label band
    assert tuple(image[50, 120]) == (0, 255, 0)
    assert image[60:120, 0:80].any() and not image[60:120, 80:160].any()  # no-signal vs empty
    bare = make_montage(frames, tile=(80, 60), labels=False)
    assert not np.array_equal(bare[:15, :80], image[:15, :80])  # the label is drawn
    assert np.array_equal(bare[30:60], image[30:60])


def test_make_montage_columns_and_formats() -> None:
    grey = np.full((48, 64), 128, np.uint8)
    bgra = np.dstack([solid((255, 0, 0)), np.zeros((48, 64), np.uint8)])
    image = make_montage({1: grey, 2: bgra, 3: noisy()}, tile=(32, 24), columns=3, labels=False)
    assert image.shape == (24, 96, 3)
    assert tuple(image[12, 16]) == (128, 128, 128) and tuple(image[12, 48]) == (255, 0, 0)
    assert make_montage({}, tile=(32, 24)).shape == (24, 32, 3)
    with pytest.raises(OptionError, match="columns"):
        make_montage({"a": grey}, columns=0)
    with pytest.raises(PayloadError, match="'a'"):
        make_montage({"a": "nope"})


def test_to_bgr_keeps_bgr_untouched() -> None:
    frame = noisy()
    assert to_bgr(frame) is frame
    assert to_bgr(frame[:, :, 0]).shape == (48, 64, 3)
