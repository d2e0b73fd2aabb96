import pytest
import torch

from labutils.images import load_photo


def test_colour_and_grey_photos():
    rgb = load_photo("astronaut")
    assert rgb.shape == (3, 512, 512) and rgb.dtype == torch.float32
    assert 0 <= rgb.min() and rgb.max() <= 1
    grey = load_photo("astronaut", grey=True)
    assert grey.shape == (1, 512, 512)
    # luminance is a weighted mean of the channels (Rec. 709 weights in scikit-image)
    expected = 0.2125 * rgb[0] + 0.7154 * rgb[1] + 0.0721 * rgb[2]
    assert torch.allclose(grey[0], expected, atol=1e-5)


def test_resize_and_grey_source():
    cam = load_photo("camera", size=128)
    assert cam.shape == (1, 128, 128)
    assert load_photo("coffee", size=100).shape[1] == 100


def test_unknown_photo():
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("lena")


@pytest.mark.parametrize("bad", [0, -5, 12.5, True])
def test_bad_size_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="size must be a positive int"):
        load_photo("camera", size=bad)
