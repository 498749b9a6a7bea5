"""RDE-VOS training losses (Li et al., CVPR 2022, Eq. 7-10), as the released code computes them.

- L_seg: bootstrapped CE (``model.losses``) per supervised frame; the released code halves the
  running total after adding each frame, so frames 1..n weigh 1/2^n .. 1/2 (5-frame clips: 1/16,
  1/8, 1/4, 1/2), not the paper's 1/2 for every frame.
- L_MC (mask consistency): per object, KL(v_true || v_perturbed) over the value channels of the
  frame-0 value encoded from the true and the perturbed mask (no key term: keys ignore masks).
- L_UG (unbiased guidance): per object, KL(STM || SAM) over the channels of the decoder input
  [read-out || query f16_thin] (1024 channels) at the SAM-supervised frames.
KL reductions are means over all elements (PyTorch's KLDivLoss default), summed over object slots;
teachers are not detached, as in the released code.
"""
import torch.nn.functional as F

from model.losses import STCN_BOOTSTRAP, bootstrapped_ce_terms

MC_WEIGHT = 10.0      # paper Sec. 3.3: gamma = 10 (released stage-2 command: 5)
UG_WEIGHT = 10.0      # paper Sec. 3.3: mu = 10, for each of the two SAM frames (stage-2 command: 5)


def frame_weights(count):
    """Weights of frames 1..count after halving the running total once per added frame."""
    return [0.5 ** (count - i) for i in range(count)]


def segmentation_loss(logits, labels, iteration, selector=None, schedule=STCN_BOOTSTRAP):
    """Weighted bootstrapped CE over the supervised frames -> (total, per-frame losses, p)."""
    frame_losses, p = bootstrapped_ce_terms(logits, labels, iteration, selector, schedule)
    total = sum(w * loss for w, loss in zip(frame_weights(len(frame_losses)), frame_losses))
    return total, frame_losses, p


def channel_kl(teacher, student, dim=1):
    """Mean over all elements of softmax(teacher) * (log softmax(teacher) - log softmax(student))."""
    log_t = F.log_softmax(teacher.float(), dim=dim)
    log_s = F.log_softmax(student.float(), dim=dim)
    return (log_t.exp() * (log_t - log_s)).mean()


def per_object_kl(teacher, student):
    """(B, K, C, ...) teacher / student -> sum over the K object slots of the channel KL."""
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)} differ")
    return sum(channel_kl(teacher[:, k], student[:, k]) for k in range(teacher.shape[1]))


def mask_consistency_loss(true_value, perturbed_value):
    """L_MC: frame-0 values (B, K, 512, h, w) from the true and from the perturbed masks."""
    return per_object_kl(true_value, perturbed_value)


def unbiased_guidance_loss(stm_input, sam_input):
    """L_UG: decoder inputs (B, K, 1024, h, w) read from the STM (teacher) and SAM (student) memories."""
    return per_object_kl(stm_input, sam_input)
