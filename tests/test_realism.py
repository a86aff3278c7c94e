"""The measures textures cannot fool (evaluation/realism.py): squeeze, unbiased KID, the colour atlas."""

import torch

from stargan_app.evaluation.realism import CHANGED_LEVELS, ColourAtlas, kid, squeeze


def grey_faces(n: int = 20, size: int = 16) -> torch.Tensor:
    """uint8 crops of one mid-grey with a little noise: 'real faces' whose colours are greys only."""
    noise = torch.randint(-6, 7, (n, 1, size, size), generator=torch.Generator().manual_seed(0))
    return (128 + noise).clamp(0, 255).to(torch.uint8).expand(n, 3, size, size).contiguous()


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(200, 8, generator=gen), torch.randn(200, 8, generator=gen)
    same, near, far = kid(a, b), kid(a, b + 0.5), kid(a, b + 2.0)
    assert abs(same) < 0.05 * near and near < far


def test_squeeze_removes_a_checkerboard_and_keeps_flat_colour():
    flat = torch.full((1, 3, 64, 64), 90, dtype=torch.uint8)
    checker = flat.clone()
    checker[:, 1, ::2, ::2] = 250  # a saturated green pixel pattern
    assert (squeeze(flat).int() - 90).abs().max() <= 2
    texture_before, texture_after = checker[:, 1].float().std(), squeeze(checker)[:, 1].float().std()
    assert texture_after < 0.25 * texture_before  # the pattern's energy is mostly gone; its mean colour stays


def test_colour_atlas_flags_changed_pixels_of_colours_real_faces_never_have_there():
    real = grey_faces()
    atlas = ColourAtlas(real)
    original = grey_faces(2)
    green = original.clone()
    green[:, :, :4, :4] = torch.tensor([20, 220, 40], dtype=torch.uint8).view(1, 3, 1, 1)
    assert atlas.implausible_share(green, original) == 1.0  # every changed pixel is green
    lighter = original.clone()
    lighter[:, :, :4, :4] = original[:, :, :4, :4] + CHANGED_LEVELS + 1  # still a grey real faces have
    assert atlas.implausible_share(lighter, original) == 0.0
    assert atlas.implausible_share(original, original) == 0.0  # nothing changed: nothing to count
    assert atlas.implausible_share(real) == 0.0
