"""What the local stack's moto patches share: a block run with a patch installed or removed,
leaving it as it was found."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def patched(
    install: Callable[[], bool], uninstall: Callable[[], None], installed: Callable[[], bool], on: bool, name: str
) -> Iterator[None]:
    """Run a block with the patch ``on`` (installed; refused if it does not fit this moto) or off."""
    was = installed()
    if on:
        if not install():
            raise RuntimeError(f"moto's {name} is not the version this patch mirrors")
    else:
        uninstall()
    try:
        yield
    finally:
        if was and not on:
            install()
        elif on and not was:
            uninstall()
