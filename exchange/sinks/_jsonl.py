"""JSON-lines directory sink (``jsonl:DIR``): exactly-once through atomic segment files.

Unstable module. Each write batch becomes one segment file that holds the batch's records,
the group's new offsets and the new replay windows (one per producer and partition) it
advanced. A segment is
written to a temporary name, fsynced, renamed into ``segments/`` and the directory fsynced:
rename is atomic (POSIX), so a segment is either whole or absent and a crash at any point
leaves at most an orphan temporary file, which opening ignores and deletes.

Layout::

    DIR/.lock                       flock: one writer process at a time
    DIR/segments/000000000001.jsonl header line, one line per record, trailer line
    DIR/.tmp-000000000002.jsonl     orphan of a crashed write (deleted on open)

The header line is one JSON object::

    {"format": "exchange-sink-jsonl", "version": 1, "group": GROUP, "records": N,
     "offsets": [[TOPIC, PARTITION, NEXT_OFFSET], ...],
     "windows": [[SENDER, PRODUCER_ID, TOPIC, PARTITION, EPOCH, HIGHEST, BITMAP_HEX], ...]}

Opening replays every segment, so memory and start-up time grow with the number of stored
records: this backend is for modest volumes, exports and inspection; use SQLite or
PostgreSQL for a long-lived consumer.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from exchange._internal.durable import fsync_dir
from exchange.sinks._base import BeforeCommitHook, SinkBase, check_group_id
from exchange.sinks._model import DeliveredRecord, SinkError, TopicPartition, WriteResult
from exchange.sinks._replay import ProducerWindow, WindowKey, plan_batch

__all__ = ["JsonlSink"]

_FORMAT = "exchange-sink-jsonl"
_VERSION = 1
#: sender, producer id, topic, partition, epoch, highest sequence, bitmap (hex)
_WINDOW_FIELDS = 7


class JsonlSink(SinkBase):
    """Exactly-once sink in a directory of JSON-lines segment files.

    Example::

        with JsonlSink("out/") as sink:
            sink.write("my-group", items)
            for record in sink.records():
                print(record.record_json)

    Args:
        directory: created when missing.
        before_commit: test hook run after a segment is written and fsynced under its
            temporary name, just before the rename that commits it.

    Raises:
        SinkError: another process holds the directory, or a segment is corrupt.
    """

    def __init__(
        self, directory: str | Path, *, before_commit: BeforeCommitHook | None = None
    ) -> None:
        super().__init__()
        self._dir = Path(directory)
        self._segments = self._dir / "segments"
        self._before_commit = before_commit
        self._ids: dict[str, int] = {}
        self._windows: dict[WindowKey, ProducerWindow] = {}
        self._offsets: dict[str, dict[TopicPartition, int]] = {}
        self._last_segment = 0
        try:
            self._segments.mkdir(parents=True, exist_ok=True)
            self._lock = (self._dir / ".lock").open("a")
        except OSError as exc:
            raise SinkError(f"cannot open JSON-lines sink {self._dir}: {exc}") from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            raise SinkError(f"JSON-lines sink {self._dir} is in use by another process") from exc
        try:
            self._recover()
        except BaseException:
            self._lock.close()
            raise

    def __repr__(self) -> str:
        return f"JsonlSink({str(self._dir)!r})"

    def _recover(self) -> None:
        # Only a crashed writer leaves a temporary file, and we hold the lock: it is garbage.
        for orphan in self._dir.glob(".tmp-*.jsonl"):
            orphan.unlink()
        for number, path in self._segment_paths():
            header, records = _read_segment(path)
            for record in records:
                self._ids[record.message_id] = number
            self._apply(header)
            self._last_segment = number

    def _segment_paths(self) -> list[tuple[int, Path]]:
        paths = []
        for path in self._segments.glob("*.jsonl"):
            if not path.stem.isdigit():
                raise _corrupt(path, "unexpected file name")
            paths.append((int(path.stem), path))
        return sorted(paths)

    def _apply(self, header: Mapping[str, Any]) -> None:
        offsets = self._offsets.setdefault(header["group"], {})
        for topic, partition, next_offset in header["offsets"]:
            key = (topic, partition)
            offsets[key] = max(offsets.get(key, 0), next_offset)
        for sender, producer_id, topic, partition, epoch, highest, bitmap in header["windows"]:
            self._windows[(sender, producer_id, topic, partition)] = ProducerWindow.from_stored(
                epoch, highest, bytes.fromhex(bitmap)
            )

    def stored_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Next offset to read per ``(topic, partition)`` of ``group_id``."""
        self._lifecycle.check_open()
        check_group_id(group_id)
        return dict(self._offsets.get(group_id, {}))

    def _write(
        self,
        group_id: str,
        batch: tuple[DeliveredRecord, ...],
        skipped_offsets: Mapping[TopicPartition, int] | None,
    ) -> WriteResult:
        stored_ids, windows = self._read_state(batch)
        plan = plan_batch(
            batch, stored_ids=stored_ids, windows=windows, skipped_offsets=skipped_offsets
        )
        known = self._offsets.get(group_id, {})
        offsets = {tp: o for tp, o in plan.offsets.items() if o > known.get(tp, 0)}
        if plan.fresh or plan.windows or offsets:
            header = {
                "format": _FORMAT,
                "version": _VERSION,
                "group": group_id,
                "records": len(plan.fresh),
                "offsets": [[t, p, o] for (t, p), o in sorted(offsets.items())],
                "windows": [
                    [s, p, t, tp, w.epoch, w.highest, w.bitmap_bytes().hex()]
                    for (s, p, t, tp), w in sorted(plan.windows.items())
                ],
            }
            number = self._last_segment + 1
            self._commit_segment(number, header, plan.fresh)
            # The rename happened: the batch is committed whatever follows, so memory follows
            # the disk now (memory never runs ahead of the disk, and never lags it either, or
            # the next batch would reuse this segment's number).
            self._last_segment = number
            for item in plan.fresh:
                self._ids[item.message_id] = number
            self._apply(header)
            try:
                fsync_dir(self._segments)
            except OSError as exc:
                error = SinkError(
                    f"JSON-lines sink {self._dir}: the batch is written but the directory could "
                    f"not be synced ({exc}); it may be lost on power failure"
                )
                error.retriable = False
                raise error from exc
        return WriteResult(tuple(plan.verdicts))

    def _commit_segment(
        self, number: int, header: Mapping[str, Any], records: Sequence[DeliveredRecord]
    ) -> None:
        lines = [json.dumps(header, separators=(",", ":"), sort_keys=True)]
        lines += [item.to_json() for item in records]
        body = "".join(line + "\n" for line in lines).encode()
        trailer = json.dumps({"sha256": hashlib.sha256(body).hexdigest()}) + "\n"
        tmp = self._dir / f".tmp-{number:012d}.jsonl"
        final = self._segments / f"{number:012d}.jsonl"
        if final.exists():
            # rename() would silently replace it; only a second writer could have made it.
            raise _corrupt(final, "a segment with this number already exists")
        try:
            with tmp.open("wb") as out:
                out.write(body + trailer.encode())
                out.flush()
                os.fsync(out.fileno())
            if self._before_commit is not None:
                self._before_commit()
            # The commit point: atomic on POSIX, so the segment is whole or absent.
            os.rename(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot write to JSON-lines sink {self._dir}: {exc}") from exc

    def _read_state(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        stored = {item.message_id for item in batch if item.message_id in self._ids}
        keys = {item.window_key for item in batch}
        return stored, {key: self._windows[key] for key in keys if key in self._windows}

    def count(self) -> int:
        """Number of stored records."""
        self._lifecycle.check_open()
        return len(self._ids)

    def records(self) -> Iterator[DeliveredRecord]:
        """Stored records in storage order, read from the segment files.

        Raises:
            SinkError: a segment is corrupt.
        """
        self._lifecycle.check_open()
        for _, path in self._segment_paths():
            yield from _read_segment(path)[1]

    def get(self, message_id: str) -> DeliveredRecord | None:
        """The stored record with ``message_id``, or None.

        Raises:
            SinkError: its segment is corrupt.
        """
        self._lifecycle.check_open()
        number = self._ids.get(message_id)
        if number is None:
            return None
        path = self._segments / f"{number:012d}.jsonl"
        return next(r for r in _read_segment(path)[1] if r.message_id == message_id)

    def _close(self) -> None:
        # Closing the file releases the flock.
        self._lock.close()


def _read_segment(path: Path) -> tuple[dict[str, Any], list[DeliveredRecord]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SinkError(f"cannot read JSON-lines segment {path}: {exc}") from exc
    body, _, trailer = data.rstrip(b"\n").rpartition(b"\n")
    body += b"\n"
    try:
        digest = json.loads(trailer)["sha256"]
        if digest != hashlib.sha256(body).hexdigest():
            raise _corrupt(path, "checksum mismatch")
        lines = body.decode().splitlines()
        header = json.loads(lines[0])
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise _corrupt(path, "unknown format or version")
        windows = header.get("windows")
        if not isinstance(windows, list) or any(len(w) != _WINDOW_FIELDS for w in windows):
            raise _corrupt(path, "the header has no replay windows per producer and partition")
        records = [DeliveredRecord.from_json_dict(json.loads(line)) for line in lines[1:]]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's recursion limit.
        raise _corrupt(path, str(exc)) from exc
    if len(records) != header["records"]:
        raise _corrupt(path, "record count mismatch")
    return header, records


def _corrupt(path: Path, why: str) -> SinkError:
    error = SinkError(f"JSON-lines segment {path} is corrupt ({why}); restore it from a backup")
    error.retriable = False
    return error
