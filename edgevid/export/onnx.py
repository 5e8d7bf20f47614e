"""torch → ONNX for one graph role, with every check the device side relies on (docs/architecture.md §3).

``export_onnx`` traces a module with the TorchScript exporter (opset 17, static shapes, batch 1),
insists that the graph inputs and outputs carry exactly the requested names (never ``input.1`` or
``onnx::…``), simplifies it with onnxsim, runs the ONNX checker and a TensorRT 8.5 compatibility
scan, and only then renames the file into place. What it returns is read back from the written
file, so the manifest describes the graph that is really there.

The scan (:func:`check_tensorrt_compatible`) refuses, naming the node:

- ops of a non-default domain (custom or ``com.microsoft`` ops: TensorRT has no plugin for them);
- ops the contract forbids: recurrences and control flow (LSTM, GRU, RNN, Loop, Scan, If),
  sequence and optional types, random generators (docs/models.md §1.4: a recurrence is one step);
- ops outside the operator matrix of the ONNX parser of TensorRT 8.5 (onnx-tensorrt
  ``docs/operators.md`` for 8.5), the oldest TensorRT edgevid targets (JetPack 5.1);
- inputs TensorRT needs as constants (Conv weights, Slice starts/ends/axes/steps, …) that are not;
- float64 tensors, opsets above 17, and dynamic or non-batch-1 graph I/O shapes.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import re
import warnings
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple, Union

from .._optional import require
from ..errors import ExportError, output_error
from ..fsutil import atomic_path
from ..log import get_logger
from ..models.modes import eval_mode

from ..spec import TensorSpec

log = get_logger(__name__)

OPSET = 17
# TensorRT 8.5's parser was built against ONNX IR version 8 (onnx 1.12); opset 17 needs IR >= 8.
IR_VERSION = 8

# Operators with "Y" in the onnx-tensorrt 8.5 support matrix (docs/operators.md, TensorRT 8.5).
TRT85_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid
Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike
RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign
Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Parsed by TensorRT but refused by the graph contract (docs/models.md §1.4, docs/architecture.md §3).
FORBIDDEN_OPS = {
    "LSTM": "recurrences are exported as one explicit step (MatMul/Gemm/Add/Sigmoid/Tanh/Mul/Slice/Concat)",
    "GRU": "recurrences are exported as one explicit step (MatMul/Gemm/Add/Sigmoid/Tanh/Mul/Slice/Concat)",
    "RNN": "recurrences are exported as one explicit step (MatMul/Gemm/Add/Sigmoid/Tanh/Mul/Slice/Concat)",
    "Loop": "graphs are stateless single steps; the caller owns the loop and the state",
    "Scan": "graphs are stateless single steps; the caller owns the loop and the state",
    "If": "graphs have no control flow; the policy object owns branching (e.g. the LiteEval gate)",
    "RandomNormal": "exported graphs must be deterministic (is a module still in training mode?)",
    "RandomNormalLike": "exported graphs must be deterministic (is a module still in training mode?)",
    "RandomUniform": "exported graphs must be deterministic (is a module still in training mode?)",
    "RandomUniformLike": "exported graphs must be deterministic (is a module still in training mode?)",
    "Bernoulli": "exported graphs must be deterministic (is a module still in training mode?)",
    "Multinomial": "exported graphs must be deterministic (is a module still in training mode?)",
}

# (op, input positions that TensorRT 8.5 needs as initializers / Constant outputs)
CONSTANT_INPUTS = {
    "Conv": (1,), "ConvTranspose": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,),
    "TopK": (1,), "CumSum": (1,), "InstanceNormalization": (1, 2), "Clip": (1, 2),
}

_BAD_NAME = re.compile(r"^(input|output)?\.?\d+$|^onnx::|^/|::")
_ELEM_TYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 3: "int8", 2: "uint8", 9: "bool"}
_DOUBLE = 11


# ---------------------------------------------------------------------------------------------
def export_onnx(module, example_inputs: Mapping[str, "torch.Tensor"], output_names: Sequence[str],  # noqa: F821
                path: Union[str, Path], *, simplify: bool = True, role: str = "") -> Tuple[List[TensorSpec], List[TensorSpec]]:
    """Export ``module`` to ``path`` with exactly these input and output names; return their specs.

    ``example_inputs`` maps each input name, in the order of ``module.forward``'s parameters, to an
    example tensor of the static shape (batch 1). The module runs in eval mode for the export (the
    training flags of all its submodules are restored afterwards). The file appears at ``path`` only
    when export, simplification, the ONNX checker and the TensorRT scan all passed; on any failure
    an :class:`ExportError` says what and where, and nothing is left behind.
    Returns ``(inputs, outputs)`` as lists of :class:`TensorSpec` read back from the written file.
    """
    torch = require("torch", "ONNX export")
    onnx = require("onnx", "ONNX export")
    path = Path(path)
    what = "graph '%s'" % (role or path.stem)
    input_names = list(example_inputs)
    output_names = list(output_names)
    _check_requested_names(what, input_names, output_names)
    _check_signature(what, module, input_names)
    for name, tensor in example_inputs.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dim() < 1 or tensor.shape[0] != 1:
            raise ExportError("example input '%s' of %s is not a batch-1 tensor" % (name, what),
                              "got %s" % ((tuple(tensor.shape),) if hasattr(tensor, "shape") else type(tensor).__name__),
                              "pass one tensor per input with batch size 1 (graphs have static shapes)")

    with atomic_path(path) as tmp, eval_mode(module):
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(module, tuple(example_inputs.values()), str(tmp), input_names=input_names,
                                  output_names=output_names, opset_version=OPSET, dynamo=False,
                                  do_constant_folding=True, dynamic_axes=None)
        except Exception as e:  # the exporter raises RuntimeError, TypeError, SymbolicValueError, …
            if isinstance(e, OSError) and output_error(e) is not None:
                raise output_error(e) from e  # a full disk or a size limit, not the model
            raise ExportError("torch.onnx.export failed for %s" % what, _first_line(e),
                              "the module must be traceable with static shapes; see the log for the op") from e
        model = onnx.load(str(tmp))
        check_names(model, input_names, output_names, what=what)
        if simplify:
            model = _simplify(model, what)
            check_names(model, input_names, output_names, what=what)
        if model.ir_version > IR_VERSION:
            model.ir_version = IR_VERSION  # nothing newer than IR 8 is used at opset 17; TRT 8.5 reads IR 8
        del model.metadata_props[:]   # onnxsim records its run log here; keep the file lean and stable
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # onnx.checker.ValidationError, onnx.shape_inference.InferenceError
            raise ExportError("the ONNX checker refuses %s" % what, _first_line(e),
                              "this is an exporter bug; report it with the model config") from e
        check_tensorrt_compatible(model, what=what)
        onnx.save(model, str(tmp))
        inputs, outputs = graph_io(onnx.load(str(tmp)), what=what)
    log.info("exported %s → %s (%s)", what, path.name, ", ".join("%s×%d" % kv for kv in sorted(op_counts(model).items())))
    return inputs, outputs


# ---------------------------------------------------------------------------------------------
def graph_io(model, *, what: str = "graph") -> Tuple[List[TensorSpec], List[TensorSpec]]:
    """Input and output :class:`TensorSpec` lists of an ONNX model (initializers are not inputs).

    Refuses dynamic dimensions, batch sizes other than 1 and element types the bundle cannot describe.
    """
    model = _as_model(model)
    inits = {t.name for t in model.graph.initializer}

    def spec(value) -> TensorSpec:
        tt = value.type.tensor_type
        dims = []
        for d in tt.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise ExportError("%s has a dynamic dimension in '%s'" % (what, value.name),
                                  "edgevid graphs have static shapes (TensorRT engines are built per shape)",
                                  "export with fixed-size example inputs and no dynamic_axes")
            dims.append(int(d.dim_value))
        if not dims or dims[0] != 1:
            raise ExportError("%s tensor '%s' has shape %s" % (what, value.name, dims),
                              "edgevid graphs take and give batch size 1", "export with batch-1 example inputs")
        if tt.elem_type not in _ELEM_TYPES:
            raise ExportError("%s tensor '%s' has ONNX element type %d" % (what, value.name, tt.elem_type),
                              "bundles describe only " + ", ".join(sorted(set(_ELEM_TYPES.values()))),
                              "cast the tensor to float32 in the module before export")
        return TensorSpec(value.name, tuple(dims), _ELEM_TYPES[tt.elem_type])

    return ([spec(v) for v in model.graph.input if v.name not in inits], [spec(v) for v in model.graph.output])


def check_names(model, input_names: Sequence[str], output_names: Sequence[str], *, what: str = "graph") -> None:
    """The graph's inputs and outputs must be exactly these names, in this order."""
    model = _as_model(model)
    inits = {t.name for t in model.graph.initializer}
    got_in = [v.name for v in model.graph.input if v.name not in inits]
    got_out = [v.name for v in model.graph.output]
    for kind, got, want in (("inputs", got_in, list(input_names)), ("outputs", got_out, list(output_names))):
        if got != want:
            bad = [n for n in got if _BAD_NAME.search(n)]
            raise ExportError("%s has %s %s" % (what, kind, got), "the contract requires exactly %s%s" % (
                want, "; generated names %s leaked through" % bad if bad else ""),
                "make forward() take/return exactly these tensors, each used (unused inputs are dropped "
                "by the exporter) and each output a distinct tensor")
    for name in got_in + got_out:
        if _BAD_NAME.search(name):
            raise ExportError("%s has a generated tensor name '%s'" % (what, name),
                              "bundles bind tensors by fixed names", "pass explicit input and output names")


def check_tensorrt_compatible(model, *, what: str = "graph") -> None:
    """Raise :class:`ExportError` naming the first node TensorRT 8.5 or the graph contract refuses."""
    model = _as_model(model)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > OPSET:
            raise ExportError("%s uses ONNX opset %d" % (what, imp.version),
                              "TensorRT 8.5 (JetPack 5.1) parses opsets up to %d" % OPSET, "export with opset %d" % OPSET)
        if imp.domain not in ("", "ai.onnx"):
            raise ExportError("%s imports the operator domain '%s'" % (what, imp.domain),
                              "TensorRT parses only the default ONNX domain",
                              "replace the custom ops with standard ONNX ops")
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    for t in graph.initializer:
        if t.data_type == _DOUBLE:
            raise ExportError("%s has a float64 weight '%s'" % (what, t.name), "TensorRT has no float64 layers",
                              "convert the module with .float() before export")
    for node in graph.node:
        where = "node '%s' (%s)" % (node.name or "?", node.op_type)
        if node.domain not in ("", "ai.onnx"):
            raise ExportError("%s has %s of domain '%s'" % (what, where, node.domain),
                              "TensorRT parses only the default ONNX domain (no custom or contrib ops)",
                              "rewrite that part of the module with standard ops")
        if node.op_type in FORBIDDEN_OPS or node.op_type.startswith(("Sequence", "Optional")) or \
                node.op_type in ("ConcatFromSequence", "SplitToSequence"):
            why = FORBIDDEN_OPS.get(node.op_type, "sequence and optional types are not part of the contract")
            raise ExportError("%s has %s, which the graph contract forbids" % (what, where), why,
                              "rewrite that part of the module (see docs/models.md §1.4)")
        if node.op_type not in TRT85_OPS:
            raise ExportError("%s has %s, which TensorRT 8.5 cannot parse" % (what, where),
                              "JetPack 5.1 ships TensorRT 8.5; its ONNX parser has no such operator",
                              "rewrite that part of the module with operators TensorRT supports")
        for pos in CONSTANT_INPUTS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos] and node.input[pos] not in constants:
                raise ExportError("%s has %s whose input %d ('%s') is computed at run time" % (
                    what, where, pos, node.input[pos]), "TensorRT 8.5 needs that input as a constant",
                    "make it a constant (fixed slice bounds, registered weights) before export")
        if node.op_type == "Cast":
            to = [a.i for a in node.attribute if a.name == "to"]
            if to and to[0] == _DOUBLE:
                raise ExportError("%s has %s to float64" % (what, where), "TensorRT has no float64 layers",
                                  "keep the module in float32")


def op_counts(model) -> Dict[str, int]:
    """How often each operator type occurs in the top-level graph."""
    counts: Dict[str, int] = {}
    for node in _as_model(model).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
def _simplify(model, what: str):
    onnxsim = require("onnxsim", "ONNX simplification")
    options = {"check_n": 1, "certify": False, "check_hazards": False}
    params = inspect.signature(onnxsim.simplify).parameters
    options = {k: v for k, v in options.items() if k in params}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # onnxsim prints its progress; the library never prints
            simplified, ok = onnxsim.simplify(model, **options)
    except Exception as e:  # onnxsim raises RuntimeError/ValueError/onnx errors from its C++ core
        raise ExportError("onnxsim failed on %s" % what, _first_line(e),
                          "export with simplify=False to inspect the raw graph, and report it") from e
    if not ok:
        raise ExportError("onnxsim's check failed for %s" % what,
                          "the simplified graph gives different outputs from the exported one",
                          "export with simplify=False and report the model config")
    return simplified


def _check_requested_names(what: str, input_names: List[str], output_names: List[str]) -> None:
    names = input_names + output_names
    if not input_names or not output_names:
        raise ExportError("%s needs at least one input and one output name" % what, None, "name them")
    dup = sorted({n for n in names if names.count(n) > 1})
    bad = [n for n in names if not isinstance(n, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n)]
    if dup or bad:
        raise ExportError("%s has unusable tensor names" % what,
                          "duplicates %s, not identifiers %s" % (dup, bad),
                          "give every input and output its own name (letters, digits, underscores)")


def _check_signature(what: str, module, input_names: List[str]) -> None:
    """Example inputs are passed positionally: their names must follow forward()'s parameters."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return
    names = [p.name for p in params]
    if names[:len(input_names)] != input_names:
        raise ExportError("inputs %s of %s do not follow forward(%s)" % (input_names, what, ", ".join(names)),
                          "example inputs are passed in order, so a mismatch would bind the wrong tensor",
                          "order example_inputs like the parameters of forward() and use the same names")


def _as_model(model):
    if isinstance(model, (str, Path)):
        return require("onnx", "ONNX checks").load(str(model))
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else repr(e)

