"""Silero VAD's ONNX graph rewritten so one call serves many streams.

As shipped, the graph's first axis is time: the rows of ``input`` are consecutive frames of
ONE stream, fed to the LSTM as a sequence with a single ``(1, 1, 128)`` state. Only one
node decides that: the Transpose in front of the LSTM, which turns the encoder's
``(rows, 128, 1)`` into ``(seq=rows, batch=1, 128)``. With its permutation changed to give
``(seq=1, batch=rows, 128)`` every row is a separate stream's next frame with its own row of
``h``/``c``; the encoder (convolutions over each row alone) and the decoder (a 1x1
convolution after a transpose that now yields ``(rows, 128, 1)``) are row-independent
already. The state inputs and outputs get a symbolic batch axis, and the stored per-tensor
shapes (which describe the batch-1 layout) are dropped. The feature extractor's first
convolution, the costliest node once rows are many, is also laid out as one convolution over
all rows (:func:`_flat_stft`); the results differ by float rounding only (~1e-7).

The edit is done on protobuf's wire format, so that the ``onnx`` package (tens of MB) is not
needed at run time; only the few messages on the path to the edited fields are decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["batched_silero"]

Field = tuple[int, int, int | bytes]  # (field number, wire type, value)

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

# Field numbers from onnx.proto (stable since IR version 3).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 1, 5, 11, 12, 13
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTR_NAME, _ATTR_INTS, _ATTR_TYPE, _ATTR_TYPE_INTS = 1, 8, 20, 7
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_RAW, _INT64 = 1, 2, 8, 9, 7
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM = 1, 2, 1
_DIM_PARAM = 2

_STATES = {b"h", b"c", b"hn", b"cn"}
_SAMPLES = 576  # an input row: 64 samples of context, then the 512 of the frame
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


def _perm(axes: list[int]) -> bytes:
    fields: list[Field] = [(_ATTR_NAME, _LEN, b"perm"), (_ATTR_TYPE, _VARINT, _ATTR_TYPE_INTS)]
    return _encode(fields + [(_ATTR_INTS, _VARINT, axis) for axis in axes])


def _node(op: bytes, inputs: list[bytes], output: bytes, *attributes: bytes) -> bytes:
    fields: list[Field] = [(_NODE_INPUT, _LEN, name) for name in inputs]
    fields += [(_NODE_OUTPUT, _LEN, output), (_NODE_OP_TYPE, _LEN, op)]
    return _encode(fields + [(_NODE_ATTRIBUTE, _LEN, a) for a in attributes])


def _int64s(name: bytes, values: list[int]) -> bytes:
    """A 1-D int64 initializer."""
    raw = struct.pack(f"<{len(values)}q", *values)
    return _encode(
        [
            (_TENSOR_DIMS, _VARINT, len(values)),
            (_TENSOR_DATA_TYPE, _VARINT, _INT64),
            (_TENSOR_NAME, _LEN, name),
            (_TENSOR_RAW, _LEN, raw),
        ]
    )


def _attribute_ints(node: list[Field]) -> dict[bytes, list[int]]:
    attributes = [_fields(a) for a in _strings(node, _NODE_ATTRIBUTE)]
    return {_strings(a, _ATTR_NAME)[0]: _ints(a, _ATTR_INTS) for a in attributes}


def _flat_stft(
    nodes: list[list[Field]], dims: dict[bytes, list[int]]
) -> tuple[list[bytes], list[bytes]]:
    """The feature extractor's Unsqueeze+Conv (256-sample windows every 128 samples of each
    padded row) as ONE convolution over all rows laid end to end.

    onnxruntime runs a convolution image by image, with a GEMM too thin to be efficient for
    the five windows of one row; end to end, it is one wide GEMM. Each row is padded to a
    whole number of hops, so that no kept window spans two rows; the windows that start in a
    row's padding are dropped. Returns the new nodes and their constants; raises ValueError
    when the nodes are not the expected ones.
    """
    ops = [_strings(n, _NODE_OP_TYPE)[0] for n in nodes]
    at = ops.index(b"Unsqueeze")
    unsqueeze, conv = nodes[at], nodes[at + 1]
    row, weight = _strings(unsqueeze, _NODE_INPUT)[0], _strings(conv, _NODE_INPUT)[1]
    settings = _attribute_ints(conv)
    if (
        ops[at + 1] != b"Conv"
        or _strings(conv, _NODE_INPUT)[0] != _strings(unsqueeze, _NODE_OUTPUT)[0]
        or len(_strings(conv, _NODE_INPUT)) != 2
        or settings.get(b"pads", [0, 0]) != [0, 0]
        or settings.get(b"dilations", [1]) != [1]
        or settings.get(b"group", []) not in ([], [1])
    ):
        raise ValueError("the feature extractor is not the expected convolution")
    [window], [hop] = settings[b"kernel_shape"], settings[b"strides"]
    if window % hop:
        raise ValueError("the feature extractor's windows are not whole hops")
    channels, conv_out = dims[weight][0], _strings(conv, _NODE_OUTPUT)[0]
    # The Pad in front makes each row _SAMPLES + 2 * hop long (reflection on both sides).
    padded = _SAMPLES + 2 * hop
    kept = (padded - window) // hop + 1
    hops = -(-padded // hop)  # per row, rounded up
    name = b"/batched/stft/"
    steps = [
        _node(b"Pad", [row, name + b"row_pad"], name + b"rows"),
        _node(b"Reshape", [name + b"rows", name + b"flat"], name + b"flat_rows"),
        _encode(
            [f for f in conv if f[0] != _NODE_INPUT and f[0] != _NODE_OUTPUT]
            + [(_NODE_INPUT, _LEN, name + b"flat_rows"), (_NODE_INPUT, _LEN, weight)]
            + [(_NODE_OUTPUT, _LEN, name + b"windows")]
        ),
        _node(b"Pad", [name + b"windows", name + b"tail_pad"], name + b"all_windows"),
        _node(b"Reshape", [name + b"all_windows", name + b"by_row"], name + b"by_row_out"),
        _node(
            b"Slice",
            [name + b"by_row_out", name + b"zero", name + b"kept", name + b"axis"],
            name + b"kept_out",
        ),
        _node(b"Transpose", [name + b"kept_out"], conv_out, _perm([1, 0, 2])),
    ]
    constants = [
        _int64s(name + b"row_pad", [0, 0, 0, hops * hop - padded]),
        _int64s(name + b"flat", [1, 1, -1]),
        # The last row's windows past its end: the convolution does not make them.
        _int64s(name + b"tail_pad", [0, 0, 0, 0, 0, window // hop - 1]),
        _int64s(name + b"by_row", [channels, -1, hops]),
        _int64s(name + b"zero", [0]),
        _int64s(name + b"kept", [kept]),
        _int64s(name + b"axis", [2]),
    ]
    return [_encode(n) for n in nodes[:at]] + steps + [
        _encode(n) for n in nodes[at + 2 :]
    ], constants


def _with_flat_stft(fields: list[Field]) -> list[Field]:
    """The graph's fields with :func:`_flat_stft`'s nodes in place of its nodes."""
    nodes = [_fields(v) for n, _, v in fields if n == _GRAPH_NODE and isinstance(v, bytes)]
    dims = {}
    for tensor in _strings(fields, _GRAPH_INITIALIZER):
        parsed = _fields(tensor)
        dims[_strings(parsed, _TENSOR_NAME)[0]] = _ints(parsed, _TENSOR_DIMS)
    new_nodes, constants = _flat_stft(nodes, dims)
    first = next(i for i, f in enumerate(fields) if f[0] == _GRAPH_NODE)
    rest = [f for f in fields if f[0] != _GRAPH_NODE]
    return (
        rest[:first]
        + [(_GRAPH_NODE, _LEN, node) for node in new_nodes]
        + rest[first:]
        + [(_GRAPH_INITIALIZER, _LEN, constant) for constant in constants]
    )


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
    fields = _with_flat_stft(fields)
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
