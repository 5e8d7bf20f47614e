"""What edgevid reads from an ONNX file without the onnx package (the device has none): the tensors whose data
lives in other files (external data), so a bundle whose graph reaches outside its own verified files is refused
before ONNX Runtime or TensorRT opens it.

A bundle's graphs are self-contained (the exporter never writes external data), so any external reference is
either a hand edit or an attack: a location like ``../../etc/shadow`` or ``/dev/zero``, or a file inside the bundle
that no sha256 covers. Only the protobuf wire format's framing is walked (ModelProto.graph, GraphProto.initializer
and sparse_initializer, and the subgraphs and tensors inside node attributes); tensor payloads are skipped, never
read. Field numbers are those of onnx/onnx.proto3.
"""
from __future__ import annotations

import mmap
from pathlib import Path
from typing import Iterator, List, Tuple, Union

# field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

Buffer = Union[bytes, memoryview, mmap.mmap]


class WireError(ValueError):
    """The bytes are not a protobuf message (a truncated or foreign file)."""


def external_data(path: Union[str, Path]) -> List[Tuple[str, str]]:
    """(tensor name, location) of every tensor of the ONNX file at ``path`` that keeps its data elsewhere."""
    with open(str(path), "rb") as f:
        if Path(path).stat().st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)
            try:
                return list(_model(view))
            finally:
                view.release()


def _fields(buf: Buffer, start: int = 0, end: int = -1) -> Iterator[Tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end or the varint's value) of each field in buf[start:end]."""
    end = len(buf) if end < 0 else end
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise WireError("a field runs past the end of its message")
            yield number, wire, pos, pos + length
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise WireError("wire type %d is not protobuf's" % wire)
        if pos > end:
            raise WireError("a field runs past the end of its message")


def _varint(buf: Buffer, pos: int, end: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise WireError("a truncated or overlong varint")


def _model(buf: Buffer) -> Iterator[Tuple[str, str]]:
    for number, wire, a, b in _fields(buf):
        if number == _MODEL_GRAPH and wire == 2:
            yield from _graph(buf, a, b)


def _graph(buf: Buffer, start: int, end: int) -> Iterator[Tuple[str, str]]:
    for number, wire, a, b in _fields(buf, start, end):
        if wire != 2:
            continue
        if number == _GRAPH_INITIALIZER:
            yield from _tensor(buf, a, b)
        elif number == _GRAPH_SPARSE:
            yield from _sparse(buf, a, b)
        elif number == _GRAPH_NODE:
            for n, w, c, d in _fields(buf, a, b):
                if n == _NODE_ATTRIBUTE and w == 2:
                    yield from _attribute(buf, c, d)


def _attribute(buf: Buffer, start: int, end: int) -> Iterator[Tuple[str, str]]:
    for number, wire, a, b in _fields(buf, start, end):
        if wire != 2:
            continue
        if number in (_ATTR_T, _ATTR_TENSORS):
            yield from _tensor(buf, a, b)
        elif number in (_ATTR_G, _ATTR_GRAPHS):
            yield from _graph(buf, a, b)
        elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
            yield from _sparse(buf, a, b)


def _sparse(buf: Buffer, start: int, end: int) -> Iterator[Tuple[str, str]]:
    for number, wire, a, b in _fields(buf, start, end):
        if wire == 2 and number in (_SPARSE_VALUES, _SPARSE_INDICES):
            yield from _tensor(buf, a, b)


def _tensor(buf: Buffer, start: int, end: int) -> Iterator[Tuple[str, str]]:
    name, location, external = "", "", False
    for number, wire, a, b in _fields(buf, start, end):
        if number == _TENSOR_LOCATION and wire == 0:
            external = a == _EXTERNAL
        elif number == _TENSOR_NAME and wire == 2:
            name = bytes(buf[a:b]).decode("utf-8", "replace")
        elif number == _TENSOR_EXTERNAL and wire == 2:
            key = value = ""
            for n, w, c, d in _fields(buf, a, b):
                if w == 2 and n in (_ENTRY_KEY, _ENTRY_VALUE):
                    text = bytes(buf[c:d]).decode("utf-8", "replace")
                    key, value = (text, value) if n == _ENTRY_KEY else (key, text)
            if key == "location":
                location = value
    if external or location:
        yield name, location
