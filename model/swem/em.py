"""SWEM's sequential weighted EM over one frame and its base read-out, as the published SWEM code
(lmm077/SWEM, HEAD) implements them; the paper's §4.1 (Eq. 5-7) describes the weighted EM.

Bases of a video are kept per object and per set (axis 2: 0 = background, 1 = foreground):
    kappa (B, K, 2, Ck, L)  basis keys, un-normalised mass-weighted means of raw keys
    nu    (B, K, 2, Cv, L)  basis values
    zeta  (B, K, 2, 1, L)   accumulated mass of each basis (grows without decay)
A memorised frame refines the previous bases with R E/M passes that always restart from the
previous state, so the bases are the mass-weighted running mean of every memorised frame.

Numerics: the adaptive weight m * (1 - P) of the published code cancels catastrophically in float32
for confidently classified pixels (P ~ 1). Here 1 - P_s is computed as the other set's share of the
kernel sums, the same number without the cancellation. Everything else follows the published order
of operations.

Where the published code differs from the paper, the code is followed: the M-step divides by the
weighted mass sum z w plus the prior mass (paper Eq. 5: by sum z), and the E-step scores
x . unit(kappa) / tau with the raw key x (the adaptive weights and the matching use cosine / tau, the
paper's Eq. 6 kernel).

Further reading: SWEM.md §1, §2.6, §2.8, §6 (project reference notes, not part of this repository).
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F

from model.memory_readout import readout_dense, softmax_over_memory
from model.precision import full_precision

# Hyper-parameters of the published SWEM scripts (train_swem_s3.sh, eval.py): --tau 0.05, --em_iter 4,
# 128 bases (config.py's 256 is always overridden; 2 banks x 2 sets x 128 = the paper's 512), --top_l 64.
TAU = 0.05          # temperature of the E-step, the adaptive weights and the matching
EM_ITERS = 4        # R: E/M passes per memorised frame (3 adaptive-weight updates in between)
N_BASES = 128       # L: bases per object per set per bank
TOP_L = 64          # top-l cumulative similarities per set fed to the fusion layer
INIT_MASS = 1e-6    # zeta of randomly initialised bases
NORM_EPS = 1e-6     # u / (|u| + eps)
PRE_PR_TOP = 5      # initial release: adaptive step summed only the 5 largest kernels per set

# "adaptive": HEAD / paper Eq. 6-7; "adaptive_initial": the originally uploaded code (top-5 kernels,
# adaptive weights on the first L/2 bases only); "fixed": plain WEM with the mask weights.
WEIGHTINGS = ("adaptive", "adaptive_initial", "fixed")


class Bases(NamedTuple):
    kappa: torch.Tensor
    nu: torch.Tensor
    zeta: torch.Tensor

    @property
    def num_objects(self):
        return self.kappa.shape[1]

    def cat(self, other, dim):
        return Bases(*(torch.cat([a, b], dim=dim) for a, b in zip(self, other)))

    def objects(self, start, stop=None):
        return Bases(*(x[:, start:stop] for x in self))


def l2_normalize(u, dim):
    return u / (u.norm(dim=dim, keepdim=True) + NORM_EPS)


def init_bases(batch, objects, key_dim, value_dim, n_bases=N_BASES, *, like, kappa=None,
               generator=None):
    """Random first-frame bases: kappa = l2-normalised N(0, 2/L) draws, nu = 0, zeta = 1e-6.

    ``like`` gives dtype and device; ``kappa`` (B, K, 2, Ck, L) replaces the random draw (stored
    initial bases, e.g. the golden data's ``kappa_init``).
    """
    shape = (batch, objects, 2, key_dim, n_bases)
    if kappa is None:
        draw = torch.randn(shape, generator=generator, dtype=torch.float64,
                           device="cpu" if generator is None else generator.device)
        kappa = l2_normalize(draw * (2.0 / n_bases) ** 0.5, dim=3)
    elif tuple(kappa.shape) != shape:
        raise ValueError(f"initial bases must have shape {shape}, got {tuple(kappa.shape)}")
    kappa = torch.as_tensor(kappa).to(device=like.device, dtype=like.dtype)
    nu = like.new_zeros(batch, objects, 2, value_dim, n_bases)
    zeta = like.new_full((batch, objects, 2, 1, n_bases), INIT_MASS)
    return Bases(kappa, nu, zeta)


def mask_weights(hard, soft, size):
    """Fixed EM weights m (B, K, 2, h*w) from the hard one-hot and soft probability of each object.

    hard, soft: (B, K, H, W), possibly at different resolutions; both are resized to the
    stride-16 grid ``size`` (hard: nearest, soft: bilinear). m_fg = h q, m_bg = (1 - h)(1 - q).
    """
    h = F.interpolate(hard, size=size, mode="nearest")
    q = F.interpolate(soft, size=size, mode="bilinear", align_corners=False)
    return torch.stack([(1 - h) * (1 - q), h * q], dim=2).flatten(3)


def adaptive_weights(unit_keys, kappa, m, tau=TAU, weighting="adaptive"):
    """Adaptive pixel weights (paper Eq. 6-7): w_fg = m_fg P_bg, w_bg = m_bg P_fg.

    unit_keys (B, Ck, n) l2-normalised keys; kappa (B, K, 2, Ck, L); m (B, K, 2, n, 1) fixed
    weights. P_s = E_s / (E_bg + E_fg), E_s = sum over the set's bases of exp((cos - max) / tau) with
    the max over both sets. The published code then forms m (1 - P_s), which cancels for confident
    pixels; here 1 - P_s is the other set's share E_other / (E_bg + E_fg): the same number, accurate
    in float32 too. Returns (B, K, 2, n, 1), or (..., L) for "adaptive_initial" (top-5 kernels;
    adaptive weights on the first L/2 bases, m on the rest).
    """
    cos = torch.einsum("bcn,bkscl->bksnl", unit_keys, l2_normalize(kappa, dim=3))
    kernels = torch.exp((cos - cos.amax(dim=(2, 4), keepdim=True)) / tau)
    if weighting == "adaptive_initial":
        kernels = kernels.topk(min(PRE_PR_TOP, kernels.shape[-1]), dim=-1).values
    e = kernels.sum(dim=-1)                                    # B, K, 2, n
    w = m * (e.flip(2) / e.sum(dim=2, keepdim=True)).unsqueeze(-1)
    if weighting == "adaptive_initial":
        n_bases = kappa.shape[-1]
        half = n_bases // 2
        w = torch.cat([w.expand(*m.shape[:-1], half), m.expand(*m.shape[:-1], n_bases - half)], dim=-1)
    return w


@full_precision   # EM and matching stay in the bases' dtype under AMP as well
def weighted_em(keys, values, weights, prior, iters=EM_ITERS, tau=TAU, weighting="adaptive"):
    """Refine ``prior`` bases with one frame (the published code's memorize step); returns the new Bases.

    keys (B, Ck, n) raw keys; values (B, K, Cv, n); weights (B, K, 2, n) fixed weights m from
    ``mask_weights``. E, M and weight steps run without gradient; only nu carries gradient (to
    ``values`` and to the prior's nu). Per set s and basis l, with w = m at the start:
        E: z_nl = softmax over l of (x_n . unit(kappa_l) / tau), times w_n (x_n itself not normalised)
        M: zeta = zeta_prev + sum_n z_nl;  kappa = (zeta_prev kappa_prev + sum_n z_nl x_n) / zeta
        W (between passes only): w = ``adaptive_weights`` (or m for "fixed")
    and at the end nu = (zeta_prev nu_prev + sum_n z_nl v_n) / zeta with the last pass's z.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    dtype = prior.kappa.dtype
    values = values.to(dtype)
    with torch.no_grad():
        keys = keys.detach().to(dtype)
        unit_keys = l2_normalize(keys, dim=1)
        m = weights.detach().to(dtype).unsqueeze(-1)                    # B, K, 2, n, 1
        zeta_prev, kappa_prev = prior.zeta.detach(), prior.kappa.detach()
        prior_sum = zeta_prev * kappa_prev
        kappa, w = kappa_prev, m
        for r in range(iters):
            affinity = torch.einsum("bcn,bkscl->bksnl", keys, l2_normalize(kappa, dim=3))
            z = torch.softmax(affinity / tau, dim=-1) * w      # B, K, 2, n, L
            zeta = zeta_prev + z.sum(dim=3).unsqueeze(3)
            kappa = (prior_sum + torch.einsum("bcn,bksnl->bkscl", keys, z)) / zeta
            if r == iters - 1 or weighting == "fixed":
                continue
            w = adaptive_weights(unit_keys, kappa, m, tau, weighting)
    nu = (zeta_prev * prior.nu + torch.einsum("bkvn,bksnl->bksvl", values, z)) / zeta
    return Bases(kappa, nu, zeta)


@full_precision   # EM and matching stay in the bases' dtype under AMP as well
def match_bases(query_key, bases, tau=TAU, top_l=TOP_L):
    """Read-out of every object's bases for a query frame (the published code's match step).

    query_key (B, Ck, n) raw keys; bases with L' bases per set (first and update banks
    concatenated). Returns (readout (B, K, Cv, n), similarity feature S (B, K, 2 top_l, n)).
    p = softmax of cos(query, kappa) / tau over both sets' bases of an object; readout = sum p nu.
    S holds, for i = 1..top_l, the background share B_i of the cumulative sums of each set's i
    largest kernels, then 1 - B_i (computed as the foreground share). S is invariant to a common
    scale, so the normalised weights serve for it.
    """
    b, k, _, ck, n_bases = bases.kappa.shape
    if top_l > n_bases:
        raise ValueError(f"top_l ({top_l}) exceeds the {n_bases} bases per set")
    unit_q = l2_normalize(query_key.to(bases.kappa.dtype), dim=1)
    unit_kappa = l2_normalize(bases.kappa, dim=3).transpose(3, 4).reshape(b * k, 2 * n_bases, ck)
    cos = unit_kappa @ unit_q.repeat_interleave(k, dim=0)                 # B*K, 2L', n
    p = softmax_over_memory(cos / tau)
    nu = bases.nu.transpose(2, 3).reshape(b * k, -1, 2 * n_bases)        # B*K, Cv, 2L'
    readout = readout_dense(p, nu)
    per_set = p.view(b * k, 2, n_bases, -1).topk(top_l, dim=2).values.cumsum(dim=2)
    total = per_set.sum(dim=1, keepdim=True)
    similarity = (per_set / total).flatten(1, 2)                         # bg shares, then fg shares
    return readout.view(b, k, *readout.shape[1:]), similarity.view(b, k, *similarity.shape[1:])
