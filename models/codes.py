"""Small integer codes for repeated keys (bike ids, zone names or keys), looked up for a whole batch at once."""

from __future__ import annotations

__all__ = ["codes_of"]

from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K", bound=Hashable)


def codes_of(codes: dict[K, int], names: list[K], add: Callable[[K], object] | None = None, *,
             add_many: Callable[[list[K]], object] | None = None) -> NDArray[np.int64]:
    """The code of each of ``names`` in ``codes``; ``add(name)`` first puts each name not there yet into
    ``codes``, in order of first appearance (or ``add_many(names)`` all of them at once, for codes computed
    vectorized). The common case (every name known) is one C-level pass.

    Example
    -------
    >>> known = {"a": 7}
    >>> codes_of(known, ["a", "b", "b"], lambda n: known.setdefault(n, len(known))).tolist()
    [7, 1, 1]
    >>> codes_of(known, ["c", "a", "d"], add_many=lambda new: known.update({n: 10 + len(n) for n in new})).tolist()
    [11, 7, 11]
    """
    try:
        return np.fromiter(map(codes.__getitem__, names), np.int64, len(names))
    except KeyError:
        pass
    new = [name for name in dict.fromkeys(names) if name not in codes]
    if add_many is not None:
        add_many(new)
    elif add is not None:
        for name in new:
            add(name)
    return np.fromiter(map(codes.__getitem__, names), np.int64, len(names))
