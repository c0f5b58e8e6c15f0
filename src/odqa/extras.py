"""Optional dependencies: importing one, or a clear error naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from odqa.errors import OdqaError


class MissingExtraError(OdqaError, ImportError):
    """An optional package is not installed: the message names the extra that installs it."""


def install_command(extra: str) -> str:
    """The pip command that installs odqa's ``extra``."""
    return f"pip install 'odqa[{extra}]'"


def missing(
    error: ImportError, module: str, extra: str, what: str, package: str | None = None
) -> ImportError:
    """What to raise when importing ``module`` (or a module of it) failed with ``error``: a
    :class:`MissingExtraError` when ``module``'s package is absent, else ``error`` as it was
    (a package that is there but broken should say so itself)."""
    if (getattr(error, "name", None) or module).split(".")[0] != module.split(".")[0]:
        return error
    return MissingExtraError(
        f"{what} needs {package or module.split('.')[0]}, which is not installed: "
        f"{install_command(extra)}"
    )


def require(module: str, extra: str, what: str, package: str | None = None) -> ModuleType:
    """``module`` imported; a :class:`MissingExtraError` naming ``extra`` when it is absent.
    ``what`` needs it (the message's subject); ``package`` is its pip name if not its own."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise missing(error, module, extra, what, package) from error
