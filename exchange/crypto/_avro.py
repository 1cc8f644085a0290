"""A bounded reader and a canonical writer for the Avro binary encoding (unstable, internal).

Why not fastavro for untrusted input: a hostile block count makes a generic reader loop or
allocate per item before any bound applies. This reader checks every length against a caller
bound *before* reading, and accepts only the canonical encoding this module writes (minimal
varints, one array block then the end marker, no negative block counts), so each envelope has
exactly one byte representation. The schemas in ``schemas/avro/envelope/`` remain the spec; a
test round-trips against fastavro to prove both agree (Avro 1.11 spec, "Binary Encoding").
"""

from __future__ import annotations

__all__ = ["AvroFormatError", "Reader", "Writer"]

_MAX_VARINT_BYTES = 10


class AvroFormatError(Exception):
    """The bytes are not a canonical, in-bounds encoding. ``oversized`` tells which."""

    def __init__(self, message: str, *, oversized: bool = False) -> None:
        super().__init__(message)
        self.oversized = oversized


class Writer:
    """Append-only canonical Avro binary writer."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def long(self, value: int) -> Writer:
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"got {value}, expected a signed 64-bit integer")
        n = (value << 1) ^ (value >> 63)  # zig-zag
        while n > 0x7F:
            self._buf.append((n & 0x7F) | 0x80)
            n >>= 7
        self._buf.append(n)
        return self

    def bytes_(self, value: bytes) -> Writer:
        self.long(len(value))
        self._buf += value
        return self

    def string(self, value: str) -> Writer:
        return self.bytes_(value.encode("utf-8"))

    def fixed(self, value: bytes, size: int) -> Writer:
        if len(value) != size:
            raise ValueError(f"got {len(value)} bytes, expected fixed({size})")
        self._buf += value
        return self

    def array_start(self, count: int) -> Writer:
        # one block of `count` items; array_end() writes the terminating zero block
        if count:
            self.long(count)
        return self

    def array_end(self, count: int) -> Writer:
        del count
        self._buf.append(0)
        return self

    def union_index(self, index: int) -> Writer:
        return self.long(index)

    def getvalue(self) -> bytes:
        return bytes(self._buf)


class Reader:
    """Bounded canonical Avro binary reader over an in-memory buffer.

    Every consumed envelope goes through here a few dozen times, so the hot methods read
    one-byte varints inline rather than through :meth:`long` (values -64..63: nearly every
    length and count in a header).
    """

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if n < 0 or end > len(self._data):
            raise AvroFormatError("truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def long(self) -> int:
        # Fast path: most lengths and counts fit one byte (values -64..63).
        data, pos = self._data, self._pos
        if pos < len(data):
            b = data[pos]
            if not b & 0x80:
                self._pos = pos + 1
                return (b >> 1) ^ -(b & 1)
        return self._long_slow()

    def _long_slow(self) -> int:
        n = 0
        shift = 0
        for i in range(_MAX_VARINT_BYTES):
            if self._pos >= len(self._data):
                raise AvroFormatError("truncated varint")
            b = self._data[self._pos]
            self._pos += 1
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                if i > 0 and b == 0:
                    raise AvroFormatError("non-minimal varint")
                if n >= 2**64:
                    raise AvroFormatError("varint overflow")
                return (n >> 1) ^ -(n & 1)
            shift += 7
        raise AvroFormatError("varint too long")

    def bounded_long(self, low: int, high: int) -> int:
        value = self.long()
        if not low <= value <= high:
            raise AvroFormatError(f"value {value} outside [{low}, {high}]")
        return value

    def bytes_(self, max_len: int) -> bytes:
        data, pos = self._data, self._pos
        if pos < len(data) and not data[pos] & 0x80:
            b = data[pos]
            n = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            n = self._long_slow()
            pos = self._pos
        if n < 0:
            raise AvroFormatError("negative length")
        if n > max_len:
            raise AvroFormatError(f"length {n} exceeds {max_len}", oversized=True)
        end = pos + n
        if end > len(data):
            raise AvroFormatError("truncated")
        self._pos = end
        return data[pos:end]

    def string(self, max_len: int) -> str:
        raw = self.bytes_(max_len)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AvroFormatError("invalid UTF-8") from exc

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def array_count(self, max_items: int) -> int:
        """Read the single block count of a canonical array (0 means empty)."""
        n = self.long()
        if n < 0:
            raise AvroFormatError("negative block count (non-canonical)")
        if n > max_items:
            raise AvroFormatError(f"{n} items exceeds {max_items}", oversized=True)
        return n

    def array_end(self, count: int) -> None:
        if count and self.long() != 0:
            raise AvroFormatError("more than one array block (non-canonical)")

    def union_index(self, branches: int) -> int:
        return self.bounded_long(0, branches - 1)

    def done(self) -> None:
        if self._pos != len(self._data):
            raise AvroFormatError("trailing bytes")
