"""arlab.rewiring: the library's own wiring computes what GatedPixelCNNLayer computes, and the
two wirings notebook 08 calls leaking really leak while the other three stay causal."""
import pytest
import torch

from arlab.models.gated_pixelcnn import GatedPixelCNNLayer
from arlab.receptive import causality_violations
from arlab.rewiring import WIRINGS, RewiredGatedLayer, rewired_gated_pixelcnn


@pytest.mark.parametrize("first", [True, False])
def test_the_default_wiring_is_the_library_layer(first):
    torch.manual_seed(0)
    plain = GatedPixelCNNLayer(4, 3, first).double()
    rewired = RewiredGatedLayer(4, 3, first).double()
    rewired.load_state_dict(plain.state_dict(), strict=False)
    v, h = torch.randn(2, 2, 4, 7, 7, dtype=torch.float64)
    for a, b in zip(plain(v, h), rewired(v, h)):
        torch.testing.assert_close(a, b)


def test_exactly_the_two_forbidden_wirings_leak():
    leaks = {name: int(causality_violations(rewired_gated_pixelcnn(**wiring), (0, 5, 4)).sum())
             for name, wiring in WIRINGS.items()}
    assert {name for name, n in leaks.items() if n} == {"arlab, shift removed", "paper + h feeds v"}, leaks
