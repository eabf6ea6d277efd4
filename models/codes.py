"""Small integer codes for repeated keys (bike ids, zone names or keys), looked up for a whole batch at once."""

from __future__ import annotations

__all__ = ["codes_of"]

from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K", bound=Hashable)


def codes_of(codes: dict[K, int], names: list[K], add: Callable[[K], object]) -> NDArray[np.int64]:
    """The code of each of ``names`` in ``codes``; ``add(name)`` first puts each name not there yet into
    ``codes``, in order of first appearance. The common case (every name known) is one C-level pass.

    Example
    -------
    >>> known = {"a": 7}
    >>> codes_of(known, ["a", "b", "b"], lambda n: known.setdefault(n, len(known))).tolist()
    [7, 1, 1]
    """
    try:
        return np.fromiter(map(codes.__getitem__, names), np.int64, len(names))
    except KeyError:
        pass
    for name in dict.fromkeys(names):
        if name not in codes:
            add(name)
    return np.fromiter(map(codes.__getitem__, names), np.int64, len(names))
