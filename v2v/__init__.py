"""v2v: a PyTorch toolkit for video-to-video synthesis.

Systems: vid2vid, Img2Vid, FOMM, dance transfer (Everybody Dance Now), single-image video
prediction (StyleGAN2 DVD-GAN), MoCoGAN-HD and keyframe interpolation, built from shared
ops (`v2v.ops`), blocks (`v2v.nn`), losses (`v2v.losses`) and metrics (`v2v.metrics`).
"""
from v2v.errors import V2VError

__version__ = "0.1.0"
__all__ = ["V2VError", "__version__"]
