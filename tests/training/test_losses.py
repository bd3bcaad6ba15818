"""The stages' losses against their definitions and against TRL's own implementations, on random tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from trl.experimental.gkd import GKDTrainer

from training.losses import dpo_loss, generalized_jsd, nll_loss, sequence_logprob


def logits(seed: int, shape=(3, 5, 11)) -> torch.Tensor:
    return 3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]])


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per position, straight from the definition."""
    p, q = p_logits.double().softmax(-1), q_logits.double().softmax(-1)
    return (p * (p.log() - q.log())).sum(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    return float((values * mask).sum() / mask.sum())


def test_nll_loss_averages_only_real_tokens():
    logprobs = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert nll_loss(logprobs, mask).item() == pytest.approx(2.0)


def test_jsd_with_beta_0_is_forward_kl_and_with_beta_1_reverse_kl():
    s, t = logits(0), logits(1)
    assert generalized_jsd(s, t, MASK, beta=0).item() == pytest.approx(masked_mean(kl(t, s), MASK), rel=1e-5)
    assert generalized_jsd(s, t, MASK, beta=1).item() == pytest.approx(masked_mean(kl(s, t), MASK), rel=1e-5)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_jsd_matches_trl_generalized_jsd_loss(beta, temperature):
    s, t = logits(2), logits(3)
    labels = torch.where(MASK.bool(), torch.tensor(1), torch.tensor(-100))
    theirs = GKDTrainer.generalized_jsd_loss(s, t, labels=labels, beta=beta, temperature=temperature)
    assert generalized_jsd(s, t, MASK, beta, temperature).item() == pytest.approx(theirs.item(), rel=1e-5)


def test_jsd_ignores_masked_positions_and_is_zero_on_equal_logits():
    s, t = logits(4), logits(5)
    changed = t.clone()
    changed[~MASK.bool()] = 100 * torch.randn_like(changed[~MASK.bool()])
    assert generalized_jsd(s, changed, MASK).item() == pytest.approx(generalized_jsd(s, t, MASK).item(), rel=1e-6)
    assert generalized_jsd(s, s, MASK, beta=0.5).item() == pytest.approx(0.0, abs=1e-6)


def test_jsd_gradient_reaches_only_the_student_where_unmasked():
    s, t = logits(6).requires_grad_(), logits(7).requires_grad_()
    generalized_jsd(s, t.detach(), MASK, beta=1.0).backward()
    assert s.grad[~MASK.bool()].abs().max() == 0
    assert s.grad[MASK.bool()].abs().max() > 0


def trl_sigmoid_dpo(chosen, rejected, ref_chosen, ref_rejected, beta):
    """TRL DPOTrainer's "sigmoid" loss with the reverse-KL f-divergence, as its compute_loss writes it."""
    chosen_logratios = chosen - ref_chosen
    rejected_logratios = rejected - ref_rejected
    delta_score = chosen_logratios - rejected_logratios
    return (-F.logsigmoid(beta * delta_score)).mean(), beta * chosen_logratios, beta * rejected_logratios


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_matches_trl_formula(beta):
    g = torch.Generator().manual_seed(8)
    chosen, rejected, ref_c, ref_r = (-50 * torch.rand(6, generator=g) for _ in range(4))
    ours, theirs = dpo_loss(chosen, rejected, ref_c, ref_r, beta), trl_sigmoid_dpo(chosen, rejected, ref_c, ref_r, beta)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_dpo_loss_is_log_2_at_the_reference_and_falls_as_chosen_gains():
    ref_c, ref_r = torch.tensor([-10.0]), torch.tensor([-12.0])
    assert dpo_loss(ref_c, ref_r, ref_c, ref_r)[0].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert dpo_loss(ref_c + 5, ref_r, ref_c, ref_r)[0] < dpo_loss(ref_c, ref_r, ref_c, ref_r)[0]


def test_sequence_logprob_sums_real_tokens_only():
    logprobs = torch.tensor([[-9.0, -1.0, -2.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert sequence_logprob(logprobs, mask).tolist() == [-3.0, -3.0]
