"""Optional drivers: import them on demand, naming the extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDriver(ImportError):
    """A backend's driver is not installed; the message names the extra to install."""


def driver(module: str, extra: str) -> ModuleType:
    """Import ``module``, or explain which extra of paymentorch brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".", maxsplit=1)[0]
        raise MissingDriver(
            f"{extra} support needs {package}: pip install 'paymentorch[{extra}]'"
        ) from exc
