"""Self-supervised lip-encoder pretraining by audio-visual synchrony contrast.

No pretrained lip encoder can be downloaded here, so the encoder is pretrained on the
clean AV training data with a synchrony task in the spirit of SyncNet (Chung and
Zisserman, "Out of time: automated lip sync in the wild", ACCV 2016 workshops) and of
the audio-visual synchronisation pretext of Owens and Efros (ECCV 2018), written as an
InfoNCE over time shifts (van den Oord et al., "Representation learning with
contrastive predictive coding", 2018): a window of ``window`` lip frames must pick the
audio window of the same time among the same audio shifted by ``-max_shift ..
max_shift`` video frames (and, with ``batch_negatives``, the same-time windows of the
other crops of the batch).

Shapes: the lip encoder gives ``v (B, Tc, D)``; :class:`SyncAudioEncoder` turns the
compressed STFT magnitude ``|C| (B, F, Tf)`` (5 STFT frames per video frame at
16 kHz, hop 128, 25 fps) into ``a (B, Tc, d)``. Both go through linear heads to the
unit sphere; window embeddings are means over ``window`` frames.

Files: :func:`save_lip_encoder` writes ``{"format": "avse.lip_encoder", "version": 1,
"lip_encoder": name, "lip_encoder_conf": resolved options, "state_dict": ...,
"step", "train_config", "valid_accuracy"}``; :func:`load_lip_encoder_weights` loads it
into an encoder of the same configuration (``lip_encoder_init`` of the prior training,
through :func:`avse.train.lip_init.init_lip_encoder`, which also reads lip-reading
checkpoints).
"""
from typing import Any, Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from avse.errors import InputError
from avse.nets.storage import read_torch_file
from avse.utils.config import plain as _plain
from avse.utils.fileio import atomic_path

LIP_ENCODER_FORMAT = "avse.lip_encoder"
LIP_ENCODER_VERSION = 1


class SyncAudioEncoder(nn.Module):
    """``|C| (B, F, Tf)`` -> ``(B, ceil(Tf / stride), dim)``: 1D convs over STFT frames,
    one output per video frame (``stride`` STFT frames)."""

    def __init__(self, n_freq: int = 256, dim: int = 128, hidden: int = 128, stride: int = 5):
        super().__init__()
        self.stride = int(stride)
        self.net = nn.Sequential(
            nn.Conv1d(n_freq, hidden, 5, padding=2), nn.GroupNorm(8, hidden), nn.SiLU(),
            nn.Conv1d(hidden, dim, self.stride, stride=self.stride), nn.GroupNorm(8, dim), nn.SiLU(),
            nn.Conv1d(dim, dim, 3, padding=1))

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        extra = (-mag.shape[-1]) % self.stride
        x = torch.log1p(10.0 * mag)
        if extra:
            x = F.pad(x, (0, extra))
        return self.net(x).transpose(1, 2)


def window_means(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, T, d)`` -> ``(B, T - window + 1, d)`` means over ``window`` frames."""
    return F.avg_pool1d(x.transpose(1, 2), window, stride=1).transpose(1, 2)


def sync_infonce(v: torch.Tensor, a: torch.Tensor, mask: torch.Tensor | None, max_shift: int = 6,
                 window: int = 5, temperature: float = 0.1, batch_negatives: bool = True):
    """InfoNCE over time shifts (see the module docstring).

    Args:
        v, a: ``(B, T, d)`` video and audio frame embeddings (any scale; normalised here).
        mask: ``(B, T)`` bool present video frames; anchors need a fully present window.
        max_shift: the negatives are the shifts ``1..max_shift`` on either side.
    Returns:
        ``(loss, accuracy)``: scalar mean cross-entropy over the valid anchors and the
        fraction of anchors whose best candidate is the synchronous one. Raises
        :class:`InputError` when the crops are too short for one anchor.
    """
    B, T, _ = v.shape
    K, W = int(max_shift), int(window)
    n_anchor = T - W + 1 - 2 * K
    if n_anchor < 1:
        raise InputError(f"sync contrast: {T} video frames are too few for window {W} and max_shift {K} "
                         f"(need at least {W + 2 * K}); use longer crops")
    vw = F.normalize(window_means(v, W), dim=-1)  # (B, T-W+1, d)
    aw = F.normalize(window_means(a, W), dim=-1)
    va = vw[:, K:K + n_anchor]  # anchors (B, N, d)
    cands = torch.stack([aw[:, K + k:K + k + n_anchor] for k in range(-K, K + 1)], dim=2)  # (B, N, 2K+1, d)
    logits = (va[:, :, None, :] * cands).sum(-1)  # (B, N, 2K+1); the target is index K
    if batch_negatives and B > 1:
        same = aw[:, K:K + n_anchor]  # (B, N, d): other crops, same time
        other = torch.einsum("bnd,cnd->bnc", va, same)  # (B, N, B)
        eye = torch.eye(B, dtype=torch.bool, device=v.device)[:, None, :].expand(B, n_anchor, B)
        other = other.masked_fill(eye, float("-inf"))
        logits = torch.cat([logits, other], dim=-1)
    logits = logits / float(temperature)
    target = torch.full((B, n_anchor), K, dtype=torch.long, device=v.device)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    if mask is None:
        valid = torch.ones(B, n_anchor, dtype=ce.dtype, device=v.device)
    else:
        full = window_means(mask.to(v.dtype)[..., None], W)[..., 0] > 1 - 1e-6  # (B, T-W+1)
        valid = full[:, K:K + n_anchor].to(ce.dtype)
    n = valid.sum().clamp(min=1.0)
    loss = (ce * valid.reshape(-1)).sum() / n
    acc = ((logits.argmax(-1) == K).to(ce.dtype) * valid).sum() / n
    return loss, acc


class LipSyncModel(nn.Module):
    """Lip encoder + audio encoder + projection heads for :func:`sync_infonce`."""

    def __init__(self, lip_encoder: nn.Module, n_freq: int, sync_dim: int = 128, audio_dim: int = 128,
                 stride: int = 5):
        super().__init__()
        self.lip_encoder = lip_encoder
        self.audio = SyncAudioEncoder(n_freq, audio_dim, audio_dim, stride)
        self.v_head = nn.Linear(lip_encoder.dim, sync_dim)
        self.a_head = nn.Linear(audio_dim, sync_dim)

    def forward(self, spec: torch.Tensor, lips: torch.Tensor, mask: torch.Tensor | None = None):
        """``spec (B, F, Tf)`` complex, ``lips (B, Tc, H, W)`` -> ``(v, a)`` ``(B, Tc, d)``."""
        v = self.v_head(self.lip_encoder(lips, mask))
        a = self.a_head(self.audio(spec.abs().float()))
        Tc = min(v.shape[1], a.shape[1])
        return v[:, :Tc], a[:, :Tc]


def save_lip_encoder(path: str, name: str, encoder: nn.Module, step: int = 0,
                     train_config: Dict[str, Any] | None = None, valid_accuracy: float | None = None) -> None:
    """Write the lip-encoder file (see the module docstring) atomically."""
    obj = {"format": LIP_ENCODER_FORMAT, "version": LIP_ENCODER_VERSION, "lip_encoder": str(name),
           "lip_encoder_conf": dict(encoder.config),
           "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
           "step": int(step), "train_config": train_config or {}, "valid_accuracy": valid_accuracy}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_lip_encoder_weights(encoder: nn.Module, path: str, name: str) -> Dict[str, Any]:
    """Load the weights of the lip-encoder file ``path`` into ``encoder`` (built as
    ``name`` with its options). Raises :class:`InputError` for a missing file, another
    kind of file (e.g. a score model) or another encoder configuration."""
    obj = read_torch_file(path, "lip-encoder file (lip_encoder_init)", "run avse.bin.train_lip_encoder first")
    return apply_lip_encoder_file(encoder, obj, path, name)


def is_lip_encoder_file(obj: Any) -> bool:
    """True for the contents of a file of :func:`save_lip_encoder`."""
    return isinstance(obj, dict) and obj.get("format") == LIP_ENCODER_FORMAT


def apply_lip_encoder_file(encoder: nn.Module, obj: Any, path: str, name: str) -> Dict[str, Any]:
    """:func:`load_lip_encoder_weights` of the already read contents ``obj`` of ``path``."""
    if not is_lip_encoder_file(obj):
        fmt = obj.get("format") if isinstance(obj, dict) else None
        raise InputError(f"lip_encoder_init {path}: not a lip-encoder file (format {fmt!r}); give the "
                         "lip_encoder.pt written by avse.bin.train_lip_encoder")
    if obj["lip_encoder"] != name or _plain(obj["lip_encoder_conf"]) != _plain(encoder.config):
        raise InputError(f"lip_encoder_init {path}: encoder {obj['lip_encoder']} {obj['lip_encoder_conf']} "
                         f"differs from the configured {name} {encoder.config}")
    encoder.load_state_dict(obj["state_dict"])
    return obj
