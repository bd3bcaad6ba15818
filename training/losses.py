"""The training stages' losses, as plain functions of tensors: each is tested alone against TRL's own.

Shapes: B sequences, L continuation positions, V vocabulary. A `mask` is 1 at the continuation's
real tokens and 0 at padding; prompt and audio positions never reach these functions, because the
student and the teacher return logits for the continuation positions only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nll_loss(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the real (unmasked) target tokens: alignment and SFT."""
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                    beta: float = 0.5, temperature: float = 1.0) -> torch.Tensor:
    """Per-token generalized Jensen-Shannon divergence over the full vocabulary, averaged over real tokens.

    GKD's definition (arXiv 2306.13649, Eq. 1; TRL's `generalized_jsd_loss`): with the mixture
    M = beta * teacher + (1 - beta) * student, JSD_beta = beta KL(teacher || M) + (1 - beta) KL(student || M).
    beta = 0 is the forward KL, KL(teacher || student), which makes the student cover everything the
    teacher would say; beta = 1 is the reverse KL, KL(student || teacher), which makes it avoid what
    the teacher would not say (mode seeking): on the student's own samples, the on-policy choice."""
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    if beta == 0:
        per_token = (teacher.exp() * (teacher - student)).sum(-1)
    elif beta == 1:
        per_token = (student.exp() * (student - teacher)).sum(-1)
    else:
        b = torch.tensor(beta, dtype=student.dtype, device=student.device)
        mixture = torch.logsumexp(torch.stack([teacher + torch.log(b), student + torch.log1p(-b)]), dim=0)
        kl_teacher = (teacher.exp() * (teacher - mixture)).sum(-1)
        kl_student = (student.exp() * (student - mixture)).sum(-1)
        per_token = beta * kl_teacher + (1 - beta) * kl_student
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's sigmoid loss on summed sequence log-probs (B,), and each pair's implicit rewards.

    loss = -log sigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))), as TRL's
    DPOTrainer computes it; the rewards beta * (policy - reference) give reward accuracy and margins."""
    chosen_rewards = beta * (chosen - ref_chosen)
    rejected_rewards = beta * (rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def sequence_logprob(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each sequence's summed log-probability over its real tokens, (B, L) -> (B,)."""
    return (logprobs * mask).sum(-1)
