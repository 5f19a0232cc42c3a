"""v2v: a PyTorch toolkit for video-to-video synthesis.

Systems: vid2vid, Img2Vid, FOMM, dance transfer (Everybody Dance Now), single-image video
prediction (StyleGAN2 DVD-GAN), MoCoGAN-HD and keyframe interpolation, built from shared
ops (`v2v.ops`), blocks (`v2v.nn`), losses (`v2v.losses`) and metrics (`v2v.metrics`).

The Python API (:mod:`v2v.api`): ``v2v.load(checkpoint, config=None, device=None)`` loads any
checkpoint (v2v or official) as a System; ``system.save_pretrained(dir)`` writes it back; one
call per job: ``v2v.animate`` (FOMM), ``v2v.generate`` (vid2vid), ``v2v.transfer`` (Everybody
Dance Now). They are imported on first use, so ``import v2v`` stays light.
"""
from v2v.errors import V2VError

__version__ = "0.1.0"
__all__ = ["V2VError", "__version__", "animate", "generate", "load", "transfer"]

_API = ("animate", "generate", "load", "transfer")


def __getattr__(name):
    if name in _API:
        from v2v import api

        return getattr(api, name)
    raise AttributeError(f"module 'v2v' has no attribute {name!r}")
