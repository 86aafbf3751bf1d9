"""arlab.hierarchy: the grey-conditioned colour model is a normalised distribution over colour
images for every grey image (by enumeration), causal in the colour values, free in the grey."""
import itertools

import torch

from arlab.hierarchy import GreyConditionedPixelCNN, grey_of


def test_grey_of_is_the_rounded_channel_mean():
    colour = torch.tensor([[[[0]], [[1]], [[3]]], [[[2]], [[2]], [[3]]]])     # [2, 3, 1, 1]
    assert grey_of(colour).flatten().tolist() == [1, 2]


def test_normalised_over_every_colour_image_for_a_fixed_grey():
    torch.manual_seed(0)
    model = GreyConditionedPixelCNN((3, 1, 2), 2, channels=6, layers=1).double()
    images = torch.tensor(list(itertools.product([0, 1], repeat=6))).view(-1, 3, 1, 2)
    for grey in ([[0, 1]], [[1, 1]]):
        cond = torch.tensor(grey).view(1, 1, 1, 2).expand(len(images), 1, 1, 2)
        total = model.log_prob(images, cond).exp().sum()
        torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))


def test_outputs_depend_on_earlier_colour_only_but_on_later_grey():
    torch.manual_seed(0)
    model = GreyConditionedPixelCNN((3, 4, 4), 4, channels=12, layers=1).double()
    model.check_cond = lambda cond, n: cond      # a float grey, to differentiate it
    gx = torch.zeros(3, 4, 4, dtype=torch.float64)
    gg = torch.zeros(1, 4, 4, dtype=torch.float64)
    for _ in range(5):                           # several random inputs: no unit is dead on all
        x = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 3).requires_grad_()
        grey = (torch.rand(1, 1, 4, 4, dtype=torch.float64) * 3).requires_grad_()
        out = model(x, grey)[0, :, 1, 1, 1].sum()    # the G logits of pixel (1, 1)
        a, b = torch.autograd.grad(out, (x, grey))
        gx, gg = gx + a[0].abs(), gg + b[0].abs()
    order = model.order()
    later = order >= order[1, 1, 1]
    assert (gx[later] == 0).all(), "the G output of (1, 1) reads its own or a later value"
    assert gx[0, 1, 1] > 0, "it should read R of its own pixel"
    assert gg[0, 2, 2] > 0, "it should read the grey image below and to the right"


def test_samples_have_the_data_shape():
    model = GreyConditionedPixelCNN((3, 3, 3), 4, channels=6, layers=1)
    grey = torch.randint(0, 4, (2, 1, 3, 3))
    assert model.sample(2, cond=grey, generator=torch.Generator().manual_seed(0)).shape == (2, 3, 3, 3)
