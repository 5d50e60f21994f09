"""Silero VAD's ONNX graph rewritten so one call serves many streams.

As shipped, the graph's first axis is time: the rows of ``input`` are consecutive frames of
ONE stream, fed to the LSTM as a sequence with a single ``(1, 1, 128)`` state. Only one
node decides that: the Transpose in front of the LSTM, which turns the encoder's
``(rows, 128, 1)`` into ``(seq=rows, batch=1, 128)``. With its permutation changed to give
``(seq=1, batch=rows, 128)`` every row is a separate stream's next frame with its own row of
``h``/``c``; the encoder (convolutions over each row alone) and the decoder (a 1x1
convolution after a transpose that now yields ``(rows, 128, 1)``) are row-independent
already. The state inputs and outputs get a symbolic batch axis, and the stored per-tensor
shapes (which describe the batch-1 layout) are dropped.

The edit is done on protobuf's wire format, so that the ``onnx`` package (tens of MB) is not
needed at run time; only the few messages on the path to the edited fields are decoded.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["batched_silero"]

Field = tuple[int, int, int | bytes]  # (field number, wire type, value)

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

# Field numbers from onnx.proto (stable since IR version 3).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 1, 11, 12, 13
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTR_NAME, _ATTR_INTS = 1, 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM = 1, 2, 1
_DIM_PARAM = 2

_STATES = {b"h", b"c", b"hn", b"cn"}
_TIME_MAJOR = [0, 2, 1]  # (rows, 128, 1) -> (rows, 1, 128): rows are time steps
_BATCH_MAJOR = [2, 0, 1]  # (rows, 128, 1) -> (1, rows, 128): rows are streams


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are ten-byte two's complement
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(data: bytes) -> list[Field]:
    """One message's fields, in order; length-delimited values stay undecoded bytes."""
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _encode(fields: Iterable[Field]) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _encode_varint(number << 3 | wire)
        if isinstance(value, int):
            out += _encode_varint(value)
        elif wire == _LEN:
            out += _encode_varint(len(value)) + value
        else:
            out += value
    return bytes(out)


def _strings(fields: list[Field], number: int) -> list[bytes]:
    return [v for n, w, v in fields if n == number and isinstance(v, bytes)]


def _ints(fields: list[Field], number: int) -> list[int]:
    """A repeated int64 field, packed or not."""
    values: list[int] = []
    for n, _, v in fields:
        if n != number:
            continue
        if isinstance(v, int):
            values.append(v)
            continue
        pos = 0
        while pos < len(v):
            item, pos = _varint(v, pos)
            values.append(item)
    return [value - (1 << 64) if value >= 1 << 63 else value for value in values]


def _replace(fields: list[Field], number: int, edit: dict[int, bytes]) -> list[Field]:
    """``fields`` with the ``number`` fields at the given occurrence indexes replaced."""
    out: list[Field] = []
    seen = 0
    for field in fields:
        if field[0] == number:
            out.append((number, _LEN, edit.get(seen, field[2])))
            seen += 1
        else:
            out.append(field)
    return out


def _batch_major_transpose(attribute: bytes) -> bytes:
    fields = _fields(attribute)
    if _strings(fields, _ATTR_NAME) != [b"perm"] or _ints(fields, _ATTR_INTS) != _TIME_MAJOR:
        raise ValueError("the LSTM's input transpose is not the expected time-major one")
    kept = [f for f in fields if f[0] != _ATTR_INTS]
    return _encode(kept + [(_ATTR_INTS, _VARINT, axis) for axis in _BATCH_MAJOR])


def _symbolic_batch(value_info: bytes) -> bytes:
    """A state's ``(1, 1, 128)`` declared as ``(1, batch, 128)``."""
    info = _fields(value_info)
    kind = _fields(_strings(info, _VALUE_TYPE)[0])
    tensor = _fields(_strings(kind, _TYPE_TENSOR)[0])
    shape = _fields(_strings(tensor, _TENSOR_SHAPE)[0])
    shape = _replace(shape, _SHAPE_DIM, {1: _encode([(_DIM_PARAM, _LEN, b"batch")])})
    tensor = _replace(tensor, _TENSOR_SHAPE, {0: _encode(shape)})
    kind = _replace(kind, _TYPE_TENSOR, {0: _encode(tensor)})
    return _encode(_replace(info, _VALUE_TYPE, {0: _encode(kind)}))


def _rewrite_graph(graph: bytes) -> bytes:
    fields = [f for f in _fields(graph) if f[0] != _GRAPH_VALUE_INFO]
    nodes = [_fields(v) for n, _, v in fields if n == _GRAPH_NODE and isinstance(v, bytes)]
    lstms = [n for n in nodes if _strings(n, _NODE_OP_TYPE) == [b"LSTM"]]
    if len(lstms) != 1:
        raise ValueError(f"expected one LSTM node, found {len(lstms)}")
    lstm_input = _strings(lstms[0], _NODE_INPUT)[0]
    node_edits: dict[int, bytes] = {}
    for index, node in enumerate(nodes):
        if _strings(node, _NODE_OUTPUT) == [lstm_input]:
            if _strings(node, _NODE_OP_TYPE) != [b"Transpose"]:
                raise ValueError("the LSTM's input does not come from a Transpose")
            attributes = _strings(node, _NODE_ATTRIBUTE)
            edited = {i: _batch_major_transpose(a) for i, a in enumerate(attributes)}
            node_edits[index] = _encode(_replace(node, _NODE_ATTRIBUTE, edited))
    if len(node_edits) != 1:
        raise ValueError("the LSTM's input transpose was not found")
    fields = _replace(fields, _GRAPH_NODE, node_edits)
    for number in (_GRAPH_INPUT, _GRAPH_OUTPUT):
        infos = _strings(fields, number)
        states = {
            i: _symbolic_batch(info)
            for i, info in enumerate(infos)
            if _strings(_fields(info), _VALUE_NAME)[0] in _STATES
        }
        fields = _replace(fields, number, states)
    return _encode(fields)


def batched_silero(model: bytes) -> bytes:
    """The serialized Silero VAD model ``model`` (faster-whisper's v6 export) rewritten so
    that row ``i`` of ``input`` is stream ``i``'s next frame and ``h[:, i]``/``c[:, i]`` its
    state. Raises ValueError when the graph is not the one this rewrite understands."""
    fields = _fields(model)
    graphs = _strings(fields, _MODEL_GRAPH)
    if len(graphs) != 1:
        raise ValueError("not an ONNX model with one graph")
    return _encode(_replace(fields, _MODEL_GRAPH, {0: _rewrite_graph(graphs[0])}))
