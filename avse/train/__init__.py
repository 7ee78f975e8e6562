"""Training of the clean-speech score-based diffusion prior (stage 4).

:mod:`avse.train.dataset` (random compressed-STFT crops, deterministic in (seed, step)),
:mod:`avse.train.ema` (EMA of weights), :mod:`avse.train.checkpoint` (resumable training
checkpoints; the exported ``model.pt`` is :mod:`avse.nets.storage`, which inference reads),
:mod:`avse.train.distributed` (device and DDP set-up), :mod:`avse.train.trainer`
(the denoising score-matching loop). The command is :mod:`avse.bin.train`.
Audio-visual priors: :mod:`avse.train.av_dataset` (crops with the lips of the same time),
:mod:`avse.train.visual_aug` (random visual corruption; the named test degradations are
:func:`avse.lips.corrupt.degrade`),
:mod:`avse.train.sync` (lip-encoder synchrony pretraining, :mod:`avse.bin.train_lip_encoder`).
"""
