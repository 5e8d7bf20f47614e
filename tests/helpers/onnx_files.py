"""Tiny ONNX graphs written byte by byte (the protobuf wire format), so tests that need a graph file need
neither torch nor the onnx package: on a device there is only onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

FLOAT = 1  # onnx.TensorProto.FLOAT


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: Union[bytes, str]) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: Sequence[int]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)  # TensorShapeProto.dim[].dim_value
    tensor = _int(1, FLOAT) + _bytes(2, dims)  # TypeProto.Tensor: elem_type, shape
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))  # ValueInfoProto: name, type.tensor_type


def identity_model(name_in: str = "frame", name_out: str = "feat", shape: Sequence[int] = (1, 4)) -> bytes:
    """A ModelProto (IR 8, opset 17) whose graph is ``name_out = Identity(name_in)``, float32 of ``shape``."""
    node = _bytes(1, name_in) + _bytes(2, name_out) + _bytes(4, "Identity")  # NodeProto: input, output, op_type
    graph = (_bytes(1, node) + _bytes(2, "g") + _bytes(11, _value_info(name_in, shape))
             + _bytes(12, _value_info(name_out, shape)))
    opset = _bytes(1, "") + _int(2, 17)  # OperatorSetIdProto: domain, version
    return _int(1, 8) + _bytes(2, "edgevid-tests") + _bytes(7, graph) + _bytes(8, opset)


def write_identity_onnx(path: Union[str, Path], name_in: str = "frame", name_out: str = "feat",
                        shape: Sequence[int] = (1, 4)) -> Path:
    path = Path(path)
    path.write_bytes(identity_model(name_in, name_out, shape))
    return path
