import pytest
import torch

from merkit.models import create_model
from merkit.models.stanet import TemporalAttentionBranch

SMALL = {"widths": (4, 8, 8, 8), "hidden": 6}


def test_shapes_masks_and_weights():
    model = create_model("stanet", num_classes=3, **SMALL)
    for frames, size in ((19, 64), (5, 32), (7, 40)):
        out = model(torch.randn(2, frames, 2, size, size))
        attention = model.last_attention
        assert out.shape == (2, 3)
        assert attention.masks.shape == (2, frames, 1, size // 8, size // 8)
        assert 0 < attention.masks.min() and attention.masks.max() < 1
        torch.testing.assert_close(attention.weights.sum(1), torch.ones(2))
    assert create_model("stanet", num_classes=3, mask_channels=8, **SMALL)(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)


def test_temporal_weights_follow_equations_3_and_4():
    torch.manual_seed(0)
    branch = TemporalAttentionBranch(5, hidden=3)
    f = torch.randn(2, 6, 5)
    with torch.no_grad():
        h, _ = branch.recurrent(f)
        got = branch(f)
    for b in range(2):
        H = h[b].T  # columns h_i, as the paper writes H
        C = torch.tanh(H.T @ H)
        p = torch.tensor([sum(C[i, j] for j in range(6)) for i in range(6)])
        w = torch.exp(p) / torch.exp(p).sum()
        torch.testing.assert_close(got[b], w)


def test_spatial_attention_is_residual_and_temporal_attention_scales_frames():
    torch.manual_seed(1)
    full = create_model("stanet", num_classes=3, **SMALL).eval()
    baseline = create_model("stanet", num_classes=3, spatial_attention=False, temporal_attention=False, **SMALL).eval()
    baseline.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(2, 4, 2, 32, 32)
    with torch.no_grad():
        full.sab.to_mask.weight.zero_()
        full.sab.to_mask.bias.fill_(-30.0)  # m = 0: S = (1 + 0) L3 = L3
        f, _ = full.frame_features(x.flatten(0, 1))
        g, _ = baseline.frame_features(x.flatten(0, 1))
        torch.testing.assert_close(f, g)
        w = full.tab(f.view(2, 4, -1))
        expected = ((1 + w.unsqueeze(2)) * f.view(2, 4, -1)).mean(1)  # eq. 5, averaged over time
        torch.testing.assert_close(full.forward_features(x), expected)
        torch.testing.assert_close(baseline.forward_features(x), g.view(2, 4, -1).mean(1))
    assert baseline.last_attention.masks is None and baseline.last_attention.weights is None


def test_every_table_2_variant_trains_a_step():
    """Gradients reach every parameter, and Adam steps on one batch lower its loss."""
    for spatial, temporal in ((False, False), (True, False), (True, True)):
        torch.manual_seed(0)
        model = create_model("stanet", num_classes=3, spatial_attention=spatial, temporal_attention=temporal, **SMALL)
        x, y = torch.randn(4, 3, 2, 32, 32), torch.tensor([0, 2, 1, 0])
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(5):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if not losses:
                assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
            optimiser.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0] - 0.05, losses
    with pytest.raises(ValueError, match="four stages"):
        create_model("stanet", num_classes=3, widths=(4, 8))
