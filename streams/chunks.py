"""Split JSON arrays of output rows into messages that stay under the producer's request size (1 MB by default,
and Kafka's own ``message.max.bytes`` default): a batch of many thousand fixes can make more rows than fit."""

from __future__ import annotations

__all__ = ["MAX_MESSAGE_BYTES", "json_chunks", "item_chunks", "marked_chunks"]

from typing import Any

import orjson

#: Upper bound of one output message's JSON value: half the 1 MiB request limit, room for key and headers.
MAX_MESSAGE_BYTES = 512 * 1024


def item_chunks(items: list[Any], limit: int = MAX_MESSAGE_BYTES) -> list[list[Any]]:
    """``items`` in order, cut into consecutive runs whose JSON array is at most ``limit`` bytes (a single item
    larger than that is a run by itself).

    Example
    -------
    >>> [len(c) for c in item_chunks(list(range(10)), limit=8)]
    [2, 2, 2, 2, 2]
    >>> item_chunks([], limit=8)
    [[]]
    """
    size = len(orjson.dumps(items))
    if size <= limit or len(items) <= 1:
        return [items]
    parts = -(-size // limit)  # about this many runs of equal count; each checked again
    step = -(-len(items) // parts)
    return [c for i in range(0, len(items), step) for c in item_chunks(items[i:i + step], limit)]


def json_chunks(items: list[Any], limit: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """The JSON arrays of :func:`item_chunks`.

    Example
    -------
    >>> json_chunks([{"a": 1}, {"a": 2}], limit=9)
    [b'[{"a":1}]', b'[{"a":2}]']
    """
    data = orjson.dumps(items)  # the common case, one message: serialized once
    if len(data) <= limit or len(items) <= 1:
        return [data]
    return [orjson.dumps(c) for c in item_chunks(items, limit)]


def marked_chunks(src: int, wm: int, earlier: int, items: list[Any], limit: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """``{"src", "wm", "items"}`` messages of a source's ``items`` for one keyed partition: one message when it
    fits under ``limit``, else several, of which only the last carries the new watermark ``wm`` (the others
    ``earlier``), so a keyed stage never passes items of the batch it has not received yet.

    Example
    -------
    >>> marked_chunks(0, 9, 5, [[1], [2]])
    [b'{"src":0,"wm":9,"items":[[1],[2]]}']
    >>> marked_chunks(0, 9, 5, [[1], [2]], limit=8)
    [b'{"src":0,"wm":5,"items":[[1]]}', b'{"src":0,"wm":9,"items":[[2]]}']
    """
    one = orjson.dumps({"src": src, "wm": wm, "items": items})
    if len(one) <= limit or len(items) <= 1:
        return [one]
    runs = item_chunks(items, limit)
    return [orjson.dumps({"src": src, "wm": wm if i == len(runs) - 1 else earlier, "items": run})
            for i, run in enumerate(runs)]
