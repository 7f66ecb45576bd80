"""Cutting a streamed publish's body into the texts of its `chunk` messages as the bytes arrive,
as Inngest does (pkg/execution/realtime/api.go `publishStream`: reads of at most
consts.StreamingChunkSize bytes, at most consts.MaxStreamingChunks of them). Each chunk is sent
as a JSON string, so a cut never splits a UTF-8 character: one split over two network reads
waits for its last byte."""

from __future__ import annotations

import codecs

CHUNK_BYTES = 1024
MAX_STREAM_BYTES = 1000 * CHUNK_BYTES


class ChunkSplitter:
    def __init__(self, size: int = CHUNK_BYTES) -> None:
        self._size = size
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def feed(self, data: bytes) -> list[str]:
        """The whole texts `data` completes, each at most `size` bytes of UTF-8; raises
        UnicodeDecodeError on bytes that are not UTF-8."""
        return self._split(self._decoder.decode(data))

    def finish(self) -> None:
        """Raises UnicodeDecodeError if the body ended inside a character."""
        self._decoder.decode(b"", final=True)

    def _split(self, text: str) -> list[str]:
        raw = text.encode()
        pieces: list[str] = []
        start = 0
        while start < len(raw):
            cut = min(start + self._size, len(raw))
            # Back off to the first byte of a character (continuation bytes are 10xxxxxx).
            while cut < len(raw) and raw[cut] & 0xC0 == 0x80:
                cut -= 1
            pieces.append(raw[start:cut].decode())
            start = cut
        return pieces
