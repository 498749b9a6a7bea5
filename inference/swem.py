"""SWEM's memory (Lin et al., CVPR 2022): per-object bases updated by sequential weighted EM.

Every object keeps two banks of L bases per {background, foreground} set: ``first`` (from the frame
where the object was given, fixed afterwards) and ``update`` (refined by every later frame except
the last). The memory therefore holds 2 x 2 x L bases per object whatever the video's length.

Frames are resized (bicubic, no padding) to a working size and the logits are resized straight
back to the frame's size, as the published SWEM evaluator does (DAVIS: every frame to 480 x 864). The
bases, the EM and the matching (well under 1 % of a frame's arithmetic) run in float64 by default,
whatever the network's dtype: the EM amplifies float32 rounding (the adaptive weight cancels for
confident pixels, and bases of tiny mass then follow the rounding errors; on the golden video the
published code in float32 is up to 1.5e-3 off its float64 probabilities, on another video 0.17;
scripts/swem_float32_agreement.py measures it). ``memory_dtype="float32"`` gives the published
all-float32 run; ``network.double()`` runs everything in float64.

Further reading: SWEM.md §2.5-2.8, §3, §8 (project reference notes, not part of this repository).
"""
import torch
import torch.nn.functional as F

from inference.frame_size import SWEM_DAVIS_WORK_SIZE, SWEM_STRIDE, SWEM_YOUTUBE_RULE, swem_work_size
from inference.frame_size import swem_youtube_work_size as youtube_work_size  # noqa: F401  (its former home)
from inference.policy import MemoryPolicy, register_policy
from model.aggregate import aggregate
from model.swem.em import EM_ITERS, N_BASES, TAU, WEIGHTINGS, init_bases, mask_weights, weighted_em

AUTO = "auto"                  # memory_dtype: float64, or the network's dtype where float64 is missing (MPS)


class WorkSizeTransform:
    """Frames -> RGB in [0, 1] at the working size (the network normalises); masks and
    probabilities stay at the frame's own size."""

    def __init__(self, height, width, work_size, mode, dtype):
        self.size = (height, width)
        self.work_size = tuple(work_size)
        self.mode = mode
        self.dtype = dtype

    def image(self, image):
        if image.dtype != self.dtype:
            # frames arrive as float32 u/255; recover u exactly before dividing in the target dtype
            image = (image.to(self.dtype) * 255).round() / 255
        if tuple(image.shape[-2:]) == self.work_size:
            return image
        return F.interpolate(image, size=self.work_size, mode=self.mode, align_corners=False)

    def masks(self, masks):
        return masks

    def restore(self, probs):
        return probs


@register_policy("swem")
class SWEMMemory(MemoryPolicy):
    """Fixed-size memory of per-object bases, read and updated as the published SWEM evaluator does.

    n_bases: L, bases per object per set per bank (128); em_iters: R (4); tau: temperature (0.05);
    top_l: top-l similarity feature width, fixed by the network's fusion layer (64); banks: 2 reads
    ``first`` and ``update``, 1 reads the sequentially updated bank only; weighting: "adaptive"
    (published HEAD, paper Eq. 6-7), "adaptive_initial" (the originally uploaded code) or "fixed"
    (plain weighted EM); work_size: (H, W) multiples of 16 (DAVIS: 480 x 864, bicubic), "youtube"
    (the YouTubeVOS rule, bilinear) or None (the frame's own size, which must be a multiple of 16);
    interpolation: overrides the frame resize mode; init_bases: stored initial keys (1, K, 2, Ck, L)
    for the K objects in order of appearance, replacing the random draw; init_seed: seed of the
    random draw (None: the global torch generator, as the published code); memory_dtype: dtype of
    the bases, the EM and the matching: "auto" (float64; the network's dtype on MPS, which has no
    float64), "float32", "float64", or None for the network's dtype.
    With a work_size the policy resizes frames itself, so evaluators hand it full-size frames
    (``MemoryPolicy.evaluator_short_side``; sizes in ``inference.frame_size``).
    """

    # eval_davis.py / eval_youtube.py start from these (evaluation/runner.py)
    PRESETS = {"davis": {"work_size": SWEM_DAVIS_WORK_SIZE}, "youtube": {"work_size": SWEM_YOUTUBE_RULE}}

    def __init__(self, network, n_bases=N_BASES, em_iters=EM_ITERS, tau=TAU, top_l=None, banks=2,
                 weighting="adaptive", work_size=SWEM_DAVIS_WORK_SIZE, interpolation=None, init_bases=None,
                 init_seed=0, memory_dtype=AUTO):
        super().__init__(network, mem_every=1)
        if not hasattr(network, "swem_core"):
            raise ValueError(f"memory='swem' needs a SWEM network (got {type(network).__name__}); load a "
                             "SWEM checkpoint")
        if top_l is not None and top_l != network.top_l:
            raise ValueError(f"top_l={top_l} does not fit this network, whose fusion layer takes "
                             f"top_l={network.top_l}")
        if n_bases < network.top_l:
            raise ValueError(f"n_bases ({n_bases}) must be at least top_l ({network.top_l})")
        if em_iters < 1 or tau <= 0:
            raise ValueError(f"em_iters must be >= 1 and tau > 0 (got {em_iters}, {tau})")
        if banks not in (1, 2):
            raise ValueError(f"banks must be 1 or 2, got {banks}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
        if isinstance(work_size, str) and work_size != SWEM_YOUTUBE_RULE:
            raise ValueError(f"work_size must be (height, width), {SWEM_YOUTUBE_RULE!r} or None, got {work_size!r}")
        if isinstance(work_size, (tuple, list)) and (len(work_size) != 2 or any(
                int(s) <= 0 or int(s) % SWEM_STRIDE for s in work_size)):
            raise ValueError(f"work_size {tuple(work_size)} must be two positive multiples of {SWEM_STRIDE}")
        self.n_bases, self.em_iters, self.tau = n_bases, em_iters, tau
        self.banks, self.weighting = banks, weighting
        self.work_size = tuple(int(s) for s in work_size) if isinstance(work_size, (tuple, list)) else work_size
        self.interpolation = interpolation or ("bilinear" if work_size == SWEM_YOUTUBE_RULE else "bicubic")
        self.init_kappa = None if init_bases is None else torch.as_tensor(init_bases)
        self.generator = None if init_seed is None else torch.Generator().manual_seed(init_seed)
        parameter = next(network.parameters())
        self.network_dtype, self.device = parameter.dtype, parameter.device
        self.dtype = self._memory_dtype(memory_dtype)
        self.first = None      # Bases of every object from the frame it was given
        self.update = None     # Bases refined by every later memorised frame
        self.frames_merged = 0
        self.transform = None

    def _memory_dtype(self, name):
        if name is None:
            return self.network_dtype
        if name == AUTO:
            return self.network_dtype if self.device.type == "mps" else torch.float64
        dtype = {"float32": torch.float32, "float64": torch.float64}.get(name, name)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"memory_dtype must be 'auto', 'float32', 'float64' or None, got {name!r}")
        return dtype

    # ----------------------------------------------------------------- frame loop hooks
    def make_transform(self, height, width):
        size = swem_work_size(self.work_size, height, width)
        self.transform = WorkSizeTransform(height, width, size, self.interpolation, self.network_dtype)
        return self.transform

    def read(self, query):
        """Fused context (K, 512, h, w) of every known object."""
        return self.network.read(query, self._memory(), tau=self.tau)[0]

    def segment(self, query, transform):
        logits = self.network.decode(self.read(query)[None], query, out_size=transform.size)[0]
        return aggregate(torch.sigmoid(logits.to(self.dtype)), dim=0)

    def merge_new(self, probs, new_masks):
        """The published YouTubeVOS rule: every channel is zeroed inside the new masks, the new
        objects' one-hot channels are appended, nothing is aggregated again."""
        new_masks = new_masks.to(self.dtype)
        if probs is None:
            return torch.cat([1 - new_masks.sum(dim=0, keepdim=True), new_masks])
        outside = (new_masks.sum(dim=0, keepdim=True) <= 0.5).to(self.dtype)
        return torch.cat([probs * outside, new_masks])

    def memorize(self, t, image, query, probs, permanent=True):
        """EM with the hard one-hot of the argmax (frame size) and the soft probabilities."""
        probs = probs.to(self.dtype)
        objects = probs.shape[0] - 1
        work = self.transform.work_size
        grid = (work[0] // SWEM_STRIDE, work[1] // SWEM_STRIDE)
        hard = F.one_hot(probs.argmax(dim=0), objects + 1).permute(2, 0, 1)[None, 1:].to(self.dtype)
        if self.first is None:
            # first annotated frame: the given one-hot masks, nearest to the working size for the
            # value encoder, and straight to the stride-16 grid for the EM weights
            soft = probs[None, 1:]
            value_masks = F.interpolate(soft, size=work, mode="nearest")
        else:
            soft = F.interpolate(probs[None], size=work, mode="bilinear", align_corners=False)[:, 1:]
            value_masks = soft
        value = self.network.encode_value(image, query.f16, value_masks.to(image.dtype))
        known = 0 if self.first is None else self.first.num_objects
        new = weighted_em(query.key.flatten(2).to(self.dtype), value.flatten(3).to(self.dtype),
                          mask_weights(hard, soft, grid), self._prior(objects, known),
                          iters=self.em_iters, tau=self.tau, weighting=self.weighting)
        if self.first is None:
            self.first = new
        else:
            self.update = new
            if objects > known:
                self.first = self.first.cat(new.objects(known), dim=1)
        self.frames_merged += 1

    def write(self, t, query, value, permanent=True):
        raise NotImplementedError("SWEM memorises through memorize(): EM needs the frame's masks")

    # ----------------------------------------------------------------- bases
    def _prior(self, objects, known):
        """Previous state (update, else first) of the known objects; random bases for new ones."""
        previous = self.update if self.update is not None else self.first
        fresh = objects - known
        if not fresh:
            return previous
        kappa = None
        if self.init_kappa is not None:
            if self.init_kappa.shape[1] < objects:
                raise ValueError(f"init_bases holds {self.init_kappa.shape[1]} objects, the video has "
                                 f"at least {objects}")
            kappa = self.init_kappa[:, known:objects]
        like = torch.empty(0, dtype=self.dtype, device=self.device)
        bases = init_bases(1, fresh, self.network.key_channels, self.network.value_channels, self.n_bases,
                           like=like, kappa=kappa, generator=self.generator)
        return bases if previous is None else previous.cat(bases, dim=1)

    def _memory(self):
        if self.update is None:
            return self.first
        if self.banks == 1:
            return self.update
        return self.first.cat(self.update, dim=4)

    def stats(self):
        """memory_frames: banks held (at most 2); memory_features: bases per object (at most 4 L)."""
        held = [b for b in (self.first, self.update) if b is not None]
        if self.banks == 1 and self.update is not None:
            held = [self.update]
        bases = sum(b.kappa.shape[2] * b.kappa.shape[4] for b in held)
        return {"memory_frames": len(held), "memory_features": bases,
                "memory_bases_total": bases * self.num_objects, "frames_merged": self.frames_merged}
