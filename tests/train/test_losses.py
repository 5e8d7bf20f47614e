"""liteeval_loss arithmetic on hand-made tensors (docs/models.md §2.3)."""
import math

import pytest
import torch

from edgevid.errors import ConfigError
from edgevid.train.losses import last_step_index, liteeval_loss


def hand_made():
    # 2 videos, 3 steps, 2 classes; video 1 has 2 real steps
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]],
                           [[0.0, 1.0], [0.0, 3.0], [9.0, -9.0]]])
    fine = torch.tensor([[1.0, 0.0, 0.0],
                         [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0],
                         [1.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1])
    return logits, fine, mask, labels


def test_loss_arithmetic_with_mask():
    logits, fine, mask, labels = hand_made()
    loss, parts = liteeval_loss({"logits": logits, "fine": fine}, labels, mask, gamma=0.1, lam=2.0)
    # CE at the last REAL step: video 0 step 2 -> [2, 0], label 0; video 1 step 1 -> [0, 3], label 1
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    ce1 = -math.log(math.exp(3) / (math.exp(3) + 1))
    ce = (ce0 + ce1) / 2
    # fine fractions: video 0 = 1/3, video 1 = 2/2 (padded step excluded)
    pen = ((1 / 3 - 0.1) ** 2 + (1.0 - 0.1) ** 2) / 2
    assert parts["ce"] == pytest.approx(ce, rel=1e-6)
    assert parts["penalty"] == pytest.approx(pen, rel=1e-6)
    assert parts["fine_rate"] == pytest.approx((1 / 3 + 1) / 2, rel=1e-6)
    assert float(loss) == pytest.approx(ce + 2.0 * pen, rel=1e-6)


def test_penalty_is_per_video_not_pooled():
    # pooled fraction would be 0.5 = gamma (zero penalty); per-video fractions are 0 and 1
    logits = torch.zeros(2, 2, 3)
    fine = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    _, parts = liteeval_loss({"logits": logits, "fine": fine}, torch.tensor([0, 1]), None, gamma=0.5, lam=2.0)
    assert parts["penalty"] == pytest.approx(0.25)


def test_no_mask_equals_all_ones_and_padding_is_ignored():
    logits, fine, mask, labels = hand_made()
    ones = torch.ones_like(mask)
    a, pa = liteeval_loss({"logits": logits, "fine": fine}, labels, None, 0.1, 2.0)
    b, pb = liteeval_loss({"logits": logits, "fine": fine}, labels, ones, 0.1, 2.0)
    assert torch.equal(a, b) and pa == pb
    # changing padded content does not change the masked loss
    l2, f2 = logits.clone(), fine.clone()
    l2[1, 2] = torch.tensor([-50.0, 50.0])
    f2[1, 2] = 1.0
    x, _ = liteeval_loss({"logits": logits, "fine": fine}, labels, mask, 0.1, 2.0)
    y, _ = liteeval_loss({"logits": l2, "fine": f2}, labels, mask, 0.1, 2.0)
    assert torch.equal(x, y)


def test_gradients_reach_logits_and_gate_indicator():
    logits, fine, mask, labels = hand_made()
    logits.requires_grad_(True)
    fine.requires_grad_(True)
    loss, _ = liteeval_loss({"logits": logits, "fine": fine}, labels, mask, 0.1, 2.0)
    loss.backward()
    assert logits.grad[0, 2].abs().sum() > 0 and logits.grad[1, 1].abs().sum() > 0
    assert logits.grad[0, :2].abs().sum() == 0 and logits.grad[1, 2].abs().sum() == 0   # only last real steps
    # d/dfine of lam * mean_v (r_v - g)^2 with r_v = sum_t fine / T_v
    assert fine.grad[0, 0].item() == pytest.approx(2.0 * 2 * (1 / 3 - 0.1) / 3 / 2, rel=1e-5)
    assert fine.grad[1, 2].item() == 0.0


def test_last_step_index():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    assert last_step_index(mask).tolist() == [2, 0, 3]


def test_bad_inputs():
    logits, fine, mask, labels = hand_made()
    mask[1] = 0
    with pytest.raises(ConfigError, match="no real step"):
        liteeval_loss({"logits": logits, "fine": fine}, labels, mask)
    with pytest.raises(ConfigError, match="expected"):
        liteeval_loss({"logits": logits, "fine": fine}, torch.tensor([0, 1, 1]))
