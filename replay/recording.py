"""The on-disk recording format: one directory, one gzip JSON-lines file per feed, a manifest.

See ``docs/schemas.md``. A line is ``{"k": key, "t": event time (epoch ms), "v": value text}``; a
value that is not valid UTF-8 is stored as ``{"k": .., "t": .., "vb": base64}`` so that every value
round-trips to the exact bytes that travelled on the wire.
"""

from __future__ import annotations

__all__ = [
    "FEED_TOPICS",
    "FORMAT",
    "RecordedMessage",
    "Recording",
    "RecordingError",
    "RecordingWriter",
]

import base64
import gzip
import hashlib
import heapq
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

FORMAT = "citystream-recording/1"
MANIFEST = "manifest.json"
FEED_TOPICS: dict[str, str] = {
    "bike_gps": "citystream.bike.gps",
    "sensor_telemetry": "citystream.sensor.telemetry",
    "incident_events": "citystream.incident.events",
}
_FLUSH_BYTES = 1 << 16  # GzipFile.write compresses per call on 3.11: feed it 64 KiB at a time


class RecordingError(ValueError):
    """A recording directory is malformed, of an unknown format or fails its checksum."""


@dataclass(frozen=True)
class RecordedMessage:
    """One message as it travelled: feed name, key, event time (epoch ms UTC) and the wire bytes."""

    feed: str
    key: str | None
    ts: int
    value: bytes


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _created_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"citystream {version('citystream')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "citystream"


@dataclass
class _FeedFile:
    path: Path
    raw: IO[bytes]
    gz: gzip.GzipFile
    buf: list[bytes] = field(default_factory=list)
    size: int = 0
    records: int = 0
    first_ts: int = 0
    last_ts: int = 0
    prev_ts: int = 0
    ordered: bool = True


class RecordingWriter:
    """Stream messages into a new recording directory; ``close()`` writes the manifest.

    Lines are written in the order given (bounded memory: only a 64 KiB buffer per feed). The
    manifest records per feed whether lines came in event-time order (``ordered``), the time span
    (``first_ts``/``last_ts`` are the min/max event time) and the sha256 of the ``.gz`` file; it is
    written last, so a directory without a manifest is an unfinished recording. Identical input gives
    byte-identical files (gzip mtime 0, no file name in the header, fixed key order, no wall clock).

    Parameters
    ----------
    path
        Directory to create (parents too).
    source
        Free text describing where the data came from (stored in the manifest).
    overwrite
        Replace an existing recording there (removes its manifest and ``*.jsonl.gz`` files only).

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "rec"
    >>> with RecordingWriter(d, "doctest") as w:
    ...     w.add("bike_gps", "B1", 1000, '{"bike_id":"B1"}')
    ...     w.meta["note"] = "hi"
    >>> rec = Recording.open(d)
    >>> rec.records, rec.first_ts, rec.extra
    (1, 1000, {'note': 'hi'})
    """

    def __init__(
        self, path: str | os.PathLike[str], source: str, *, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.meta: dict[str, Any] = {}
        self._feeds: dict[str, _FeedFile] = {}
        self._closed = False
        old = [self.path / MANIFEST, *self.path.glob("*.jsonl.gz")] if self.path.is_dir() else []
        old = [p for p in old if p.exists()]
        if old and not overwrite:
            raise FileExistsError(f"{self.path} already holds a recording (overwrite replaces it: --overwrite)")
        for p in old:
            p.unlink()
        self.path.mkdir(parents=True, exist_ok=True)

    def add(self, feed: str, key: str | None, ts_ms: int, value: bytes | str) -> None:
        """Append one message to ``feed``'s file (``value`` as str is encoded to UTF-8)."""
        if self._closed:
            raise RecordingError("add() after close()")
        if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
            raise TypeError(f"ts_ms must be int epoch milliseconds, got {ts_ms!r}")
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be str or None, got {key!r}")
        f = self._feeds.get(feed) or self._open_feed(feed)
        if isinstance(value, str):
            obj = {"k": key, "t": ts_ms, "v": value}
        else:
            try:
                obj = {"k": key, "t": ts_ms, "v": bytes(value).decode()}
            except UnicodeDecodeError:
                obj = {"k": key, "t": ts_ms, "vb": base64.b64encode(value).decode()}
        try:
            line = orjson.dumps(obj)
        except orjson.JSONEncodeError as e:  # a str with lone surrogates has no UTF-8 form
            raise ValueError(f"value is not encodable as UTF-8: {e}") from None
        f.buf.append(line + b"\n")
        f.size += len(line) + 1
        if f.records == 0:
            f.first_ts = f.last_ts = ts_ms
        else:
            f.ordered = f.ordered and ts_ms >= f.prev_ts
            f.first_ts, f.last_ts = min(f.first_ts, ts_ms), max(f.last_ts, ts_ms)
        f.prev_ts = ts_ms
        f.records += 1
        if f.size >= _FLUSH_BYTES:
            self._flush(f)

    def _open_feed(self, feed: str) -> _FeedFile:
        if feed not in FEED_TOPICS:
            raise ValueError(f"unknown feed {feed!r}; expected one of {sorted(FEED_TOPICS)}")
        path = self.path / f"{feed}.jsonl.gz"
        raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
        self._feeds[feed] = f = _FeedFile(path, raw, gz)
        return f

    @staticmethod
    def _flush(f: _FeedFile) -> None:
        f.gz.write(b"".join(f.buf))
        f.buf.clear()
        f.size = 0

    def close(self) -> None:
        """Finish every feed file and write ``manifest.json`` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        feeds: dict[str, Any] = {}
        for name in FEED_TOPICS:  # canonical feed order: the merge breaks ties by it
            f = self._feeds.get(name)
            if f is None:
                continue
            self._flush(f)
            f.gz.close()
            f.raw.close()
            feeds[name] = {
                "topic": FEED_TOPICS[name],
                "file": f.path.name,
                "records": f.records,
                "first_ts": f.first_ts,
                "last_ts": f.last_ts,
                "ordered": f.ordered,
                "sha256": _sha256(f.path),
            }
        manifest = {
            "format": FORMAT,
            "source": self.source,
            "created_by": _created_by(),
            "feeds": feeds,
            "extra": self.meta,
        }
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, self.path / MANIFEST)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # leave no manifest: the directory stays visibly unfinished
            self._closed = True
            for f in self._feeds.values():
                f.gz.close()
                f.raw.close()


class Recording:
    """A finished recording, read lazily (use :meth:`open`).

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with RecordingWriter(d, "doctest") as w:
    ...     w.add("sensor_telemetry", "S1", 2000, "b")
    ...     w.add("bike_gps", "B1", 1000, "a")
    ...     w.add("bike_gps", "B1", 2000, "c")
    >>> rec = Recording.open(d)
    >>> rec.verify()
    >>> [(m.feed, m.ts, m.value) for m in rec.iter_merged()]
    [('bike_gps', 1000, b'a'), ('bike_gps', 2000, b'c'), ('sensor_telemetry', 2000, b'b')]
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Recording:
        """Read and validate ``path/manifest.json``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"recording directory not found: {path}")
        if not path.is_dir():
            raise NotADirectoryError(f"not a recording directory: {path}")
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(
                f"{path} has no {MANIFEST}: not a recording, or its writer was never closed"
            )
        try:
            manifest = orjson.loads(mpath.read_bytes())
        except orjson.JSONDecodeError as e:
            raise RecordingError(f"{mpath} is not valid JSON: {e}") from None
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        if fmt != FORMAT:
            raise RecordingError(
                f"{mpath}: unknown recording format {fmt!r} (this reader knows {FORMAT!r})"
            )
        feeds = manifest.get("feeds")
        if not isinstance(feeds, dict):
            raise RecordingError(f"{mpath}: 'feeds' must be an object")
        for name, info in feeds.items():
            missing = {"topic", "file", "records", "first_ts", "last_ts", "sha256"} - set(info)
            if missing:
                raise RecordingError(f"{mpath}: feed {name!r} lacks {sorted(missing)}")
            if Path(info["file"]).name != info["file"] or not (path / info["file"]).is_file():
                raise RecordingError(f"{path}: feed {name!r} file {info['file']!r} is missing")
        return cls(path, manifest)

    @property
    def feeds(self) -> tuple[str, ...]:
        return tuple(self.manifest["feeds"])

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", ""))

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.manifest.get("extra") or {})

    @property
    def records(self) -> int:
        return sum(int(f["records"]) for f in self.manifest["feeds"].values())

    @property
    def first_ts(self) -> int | None:
        return min((f["first_ts"] for f in self._nonempty()), default=None)

    @property
    def last_ts(self) -> int | None:
        return max((f["last_ts"] for f in self._nonempty()), default=None)

    def _nonempty(self) -> list[dict[str, Any]]:
        return [f for f in self.manifest["feeds"].values() if f["records"]]

    def topic(self, feed: str) -> str:
        """Kafka topic the feed's messages belong to."""
        return str(self._info(feed)["topic"])

    def _info(self, feed: str) -> dict[str, Any]:
        try:
            return self.manifest["feeds"][feed]  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(
                f"recording {self.path} has no feed {feed!r} (has {list(self.feeds)})"
            ) from None

    def verify(self) -> None:
        """Check every feed file against its manifest sha256; raise :class:`RecordingError` if not."""
        for name in self.feeds:
            info = self._info(name)
            digest = _sha256(self.path / info["file"])
            if digest != info["sha256"]:
                raise RecordingError(
                    f"checksum mismatch for feed {name!r} ({info['file']}): "
                    f"manifest {info['sha256'][:12]}…, file {digest[:12]}…"
                )

    def iter_feed(self, feed: str) -> Iterator[RecordedMessage]:
        """Stream one feed's messages in file (production) order."""
        info = self._info(feed)
        fpath = self.path / info["file"]
        with gzip.open(fpath, "rb") as gz:
            for n, line in enumerate(gz, 1):
                try:
                    d = orjson.loads(line)
                    value = (
                        d["v"].encode() if "v" in d else base64.b64decode(d["vb"], validate=True)
                    )
                    yield RecordedMessage(feed, d["k"], d["t"], value)
                except (
                    orjson.JSONDecodeError,
                    KeyError,
                    TypeError,
                    AttributeError,
                    ValueError,
                ) as e:
                    raise RecordingError(
                        f"{fpath}:{n}: bad line ({type(e).__name__}: {e})"
                    ) from None

    def iter_merged(
        self,
        feeds: Iterable[str] | None = None,
        from_ts: int | None = None,
        to_ts: int | None = None,
    ) -> Iterator[RecordedMessage]:
        """Merge feeds by event time, streaming; keep ``from_ts <= ts < to_ts``.

        Ties go by feed order (manifest order) then line order. Each feed's own line order is always
        kept, so a feed written out of order (``ordered: false``) replays its late lines late.
        """
        names = list(self.feeds if feeds is None else feeds)
        for name in names:
            self._info(name)
        merged: Iterator[RecordedMessage] = heapq.merge(
            *(self.iter_feed(n) for n in names), key=lambda m: m.ts
        )
        if from_ts is not None:
            merged = (m for m in merged if m.ts >= from_ts)
        if to_ts is not None:
            if all(self._info(n).get("ordered", True) for n in names):
                merged = takewhile(lambda m: m.ts < to_ts, merged)  # stop reading early
            else:
                merged = (m for m in merged if m.ts < to_ts)
        return merged

    def merged(
        self,
        feeds: Iterable[str] | None = None,
        from_ts: int | None = None,
        to_ts: int | None = None,
    ) -> Iterable[RecordedMessage]:
        """A re-iterable view of :meth:`iter_merged` (each ``iter()`` re-reads the files; for loops)."""
        names = None if feeds is None else list(feeds)
        return _Merged(self, names, from_ts, to_ts)


@dataclass(frozen=True)
class _Merged:
    rec: Recording
    feeds: list[str] | None
    from_ts: int | None
    to_ts: int | None

    def __iter__(self) -> Iterator[RecordedMessage]:
        return self.rec.iter_merged(self.feeds, self.from_ts, self.to_ts)
