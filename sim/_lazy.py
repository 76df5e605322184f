"""PEP 562 lazy exports: a package's public names are imported on first use."""
from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, names: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``names[attr]`` is the submodule (relative
    to the package) that defines ``attr``, imported on first access and kept (a name mapped
    to itself is the submodule). Any other submodule is imported when first named, as it
    was when the package imported everything (``sim.scenario.validate`` after ``import sim``)."""
    def __getattr__(attr: str):
        if attr.startswith("__"):
            raise AttributeError(f"module '{package}' has no attribute '{attr}'")
        target = names.get(attr, attr)
        try:
            module = importlib.import_module(f".{target}", package)
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{target}":
                raise
            raise AttributeError(f"module '{package}' has no attribute '{attr}'") from None
        value = module if target == attr else getattr(module, attr)
        setattr(sys.modules[package], attr, value)
        return value
    return __getattr__
