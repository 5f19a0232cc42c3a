"""One module per system. `SYSTEMS` maps a config's `system:` name to its class, imported lazily."""
from __future__ import annotations

import importlib

from v2v.errors import V2VError, unknown_key_message

SYSTEMS = {
    "toy": "v2v.models.toy:ToySystem",
    "fomm": "v2v.models.fomm:FOMMSystem",
    "vid2vid": "v2v.models.vid2vid:Vid2VidSystem",
    "dance": "v2v.models.dance:DanceSystem",
}


def get_system_class(name: str):
    """Return the System class registered under ``name``."""
    if name not in SYSTEMS:
        raise V2VError(unknown_key_message("system", name, SYSTEMS))
    mod, cls = SYSTEMS[name].split(":")
    return getattr(importlib.import_module(mod), cls)
