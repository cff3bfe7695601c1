"""Reading rows from a JSON-lines or CSV file in internal storage, streamed.

The file arrives in chunks (``Storage.open``) and is split into lines as it comes: only one
chunk and the rows parsed from it are ever held, whatever the file's size. Each row keeps the
number of the line it starts on, for error messages.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from enum import StrEnum
from typing import Any

#: A row of the file: a JSON object (or a CSV line under a header), or a JSON array (or a CSV
#: line without a header).
Row = dict[str, Any] | list[Any]
#: Rows with the number (1-based) of the line each starts on.
Block = list[tuple[int, Row]]

#: A line (a CSV record) longer than this is refused rather than buffered.
MAX_LINE = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
#: Rows parsed at a time: a chunk of the file holds thousands of lines, kept as bytes until
#: the rows before them are used.
ROWS_PER_BLOCK = 256


class FileFormat(StrEnum):
    """The format of a file of rows."""

    JSONL = "JSONL"
    """JSON lines: one JSON object (or array) per line, as ``fetchType: STORE`` writes them."""
    CSV = "CSV"
    """Comma-separated values (RFC 4180 quoting; quoted fields may span lines)."""


class RowError(Exception):
    """A line of the file that cannot become a row (or whose row cannot be bound)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def format_of(uri: str) -> FileFormat:
    """The format a file's name suggests: ``.csv`` / ``.tsv`` are CSV, anything else JSON lines.

    Example::

        >>> format_of("plait:///ns/f/executions/1/rows.csv")
        <FileFormat.CSV: 'CSV'>
    """
    path = uri.split("?", 1)[0].lower()
    return FileFormat.CSV if path.endswith((".csv", ".tsv")) else FileFormat.JSONL


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[int, bytes]]]:
    """The complete lines of a byte stream (without their ``\\n``), numbered from 1, grouped by
    the chunk that completed them."""
    pending = b""
    number = 0
    async for chunk in chunks:
        if not chunk:
            continue
        data = pending + chunk if pending else chunk
        pieces = data.split(b"\n")
        pending = pieces.pop()
        if len(pending) > MAX_LINE:
            raise RowError(number + 1, f"longer than {MAX_LINE // (1024 * 1024)} MiB")
        if pieces:
            block = [(number + index, piece) for index, piece in enumerate(pieces, 1)]
            number += len(pieces)
            yield block
    if pending:
        yield [(number + 1, pending)]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


async def json_rows(chunks: AsyncIterator[bytes]) -> AsyncGenerator[Block, None]:
    """Rows of a JSON-lines stream; blank lines are skipped.

    The rows before a bad line are yielded before its :class:`RowError` is raised.
    """
    async for block in lines(chunks):
        for start in range(0, len(block), ROWS_PER_BLOCK):
            rows: Block = []
            try:
                _parse_json_block(block[start : start + ROWS_PER_BLOCK], rows)
            except RowError:
                if rows:
                    yield rows
                raise
            if rows:
                yield rows


_DECODE = json.JSONDecoder().raw_decode


def _parse_json_block(block: list[tuple[int, bytes]], rows: Block) -> None:
    decode = _DECODE
    for number, raw in block:
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise RowError(number, "not valid UTF-8") from None
        if not text:
            continue
        try:
            value, end = decode(text)
        except json.JSONDecodeError as error:
            raise RowError(number, f"not valid JSON: {error.msg} (column {error.colno})") from None
        if end != len(text):
            raise RowError(number, f"not valid JSON: extra data after the value (column {end + 1})")
        if not isinstance(value, dict | list):
            raise RowError(number, f"expected a JSON object or array, got {_kind(value)}")
        rows.append((number, value))


class _Queue:
    """An iterator over queued lines, for a ``csv.reader`` fed as the file arrives."""

    def __init__(self) -> None:
        self.items: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.items:
            raise StopIteration
        return self.items.popleft()


async def csv_rows(
    chunks: AsyncIterator[bytes], *, header: bool = True, delimiter: str = ","
) -> AsyncGenerator[Block, None]:
    """Rows of a CSV stream: maps under the header line (``header``), else lists of values.

    Empty fields are ``null``; blank lines are skipped. A quoted field may hold newlines: lines
    reach the parser once they hold an even number of quote characters (complete records).
    """
    queue = _Queue()
    reader = csv.reader(queue, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    state = _CsvState(header)
    quotes = 0
    size = 0
    async for block in lines(chunks):
        rows: Block = []
        for number, raw in block:
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RowError(number, "not valid UTF-8") from None
            queue.items.append(text + "\n")
            quotes += text.count('"')
            size += len(text)
            if quotes % 2:
                if size > MAX_LINE:
                    raise RowError(
                        number, f"a CSV record longer than {MAX_LINE // (1024 * 1024)} MiB"
                    )
                continue  # a quoted field goes on on the next line
            quotes = size = 0
            try:
                state.parse(reader, queue, rows)
            except RowError:
                if rows:
                    yield rows  # the rows before the bad one
                raise
            if len(rows) >= ROWS_PER_BLOCK:
                yield rows
                rows = []
        if rows:
            yield rows
    if queue.items:
        rows = []
        try:
            state.parse(reader, queue, rows)
        except RowError:
            if rows:
                yield rows
            raise
        if rows:
            yield rows


class _CsvState:
    def __init__(self, header: bool) -> None:
        self.header = header
        self.names: list[str] | None = None

    def parse(self, reader: Any, queue: _Queue, rows: Block) -> None:
        """Parse every record of the queued lines into ``rows``."""
        while queue.items:
            start = reader.line_num + 1
            try:
                values: list[Any] = next(reader)
            except csv.Error as error:
                raise RowError(start, f"not valid CSV: {error}") from None
            except StopIteration:  # a quoted field never closed
                raise RowError(start, "not valid CSV: a quoted field is not closed") from None
            if not values:
                continue  # a blank line
            values = [value if value != "" else None for value in values]
            if self.header and self.names is None:
                self.names = [str(value or "") for value in values]
                continue
            if self.names is None:
                rows.append((start, values))
                continue
            if len(values) != len(self.names):
                raise RowError(
                    start,
                    f"{len(values)} field(s) but the header has {len(self.names)} column(s)",
                )
            rows.append((start, dict(zip(self.names, values, strict=True))))
