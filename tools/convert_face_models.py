"""Convert MediaPipe's face detector and attention face mesh models to ONNX.

Build-time only: needs tensorflow-cpu and tf2onnx, which the service never installs. Run it in
a throwaway environment::

    python3.11 -m venv /tmp/conv
    /tmp/conv/bin/pip install tensorflow-cpu tf2onnx onnxruntime onnx
    /tmp/conv/bin/python tools/convert_face_models.py \
        --mediapipe .venv/lib/python3.11/site-packages/mediapipe

It reads the `.tflite` files shipped inside the mediapipe==0.10.21 wheel and converts each with
tf2onnx. The attention mesh model (`face_landmark_with_attention.tflite`, the one MediaPipe's
face mesh runs with refine_landmarks) has MediaPipe custom ops (Landmarks2TransformMatrix,
TransformTensorBilinear, TransformLandmarks): tf2onnx passes them through and
tools/mediapipe_custom_ops.py rewrites them as standard ONNX subgraphs (opset 17: GridSample).
PRelu nodes are written as Relu(x) - slope * Relu(-x) (exactly equal, the mesh model runs 2x
faster on ONNX Runtime's CPU). The batch dimension is made dynamic (inputs, outputs and the
Reshape / Slice nodes that pinned it to 1), and names are made positional so that the output
is byte-for-byte reproducible. Checks, printed as it goes: the detector against the TFLite
interpreter on random inputs; the attention model's trunk (every op before the custom ones)
against the TFLite interpreter on the model cut before them; each custom-op subgraph against a
NumPy port of its C++ kernel on the tensors the converted model feeds it; batch 3 against
batch 1. Writes `vision/data/models/*.onnx` plus `SHA256SUMS`. The full-range detector in the
wheel is a sparse model and is not converted.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import mediapipe_custom_ops as mpops

OUT = Path(__file__).resolve().parents[1] / "vision" / "data" / "models"
DETECTOR = ("face_detection_short_range.onnx",
            "modules/face_detection/face_detection_short_range.tflite", 13)
MESH = ("face_landmark_with_attention.onnx",
        "modules/face_landmark/face_landmark_with_attention.tflite", 17)
# Output order the onnx backend reads (vision/landmarks_onnx/attention.py OUTPUTS).
MESH_OUTPUTS = ("output_mesh_identity", "output_lips", "output_left_eye", "output_right_eye",
                "output_left_iris", "output_right_iris", "conv_faceflag")
INT64_MAX = np.iinfo(np.int64).max


def _dynamic_batch(model: Any) -> None:
    """Batch dimension of every input and output -> 'batch'; Reshape shapes keep dim 0 and
    Slices over dim 0 (tf2onnx's identity StridedSlice) keep all of it."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    # Drop stale value_info so shape inference does not pin batch=1.
    del g.value_info[:]
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}

    def value(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name]).copy()
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t).copy()
        return None

    def store(node: Any, k: int, arr: np.ndarray) -> None:
        # A fresh initializer per node: tf2onnx shares equal constants between nodes (a
        # Reshape's shape can be a Slice's ends).
        name = f"{node.name}__dynamic_batch_{k}"
        g.initializer.append(numpy_helper.from_array(arr.astype(np.int64), name))
        node.input[k] = name

    for n in g.node:
        if n.op_type == "Reshape":
            shape = value(n.input[1])
            if shape is not None and shape.size and shape[0] == 1:
                shape[0] = -1 if -1 not in shape[1:] else 0
                store(n, 1, shape)
        elif n.op_type == "Slice" and len(n.input) >= 4:
            starts, ends, axes = (value(x) for x in n.input[1:4])
            if starts is None or ends is None or axes is None:
                continue
            for k, ax in enumerate(axes):
                if ax == 0 and starts[k] == 0 and ends[k] == 1:
                    ends[k] = INT64_MAX
                    store(n, 2, ends)
    used = {i for n in g.node for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.checker.check_model(model)


def _prelu_as_relu(model: Any) -> int:
    """PRelu(x, slope) -> Relu(x) - slope * Relu(-x), bit for bit the same. ONNX Runtime's CPU
    PRelu broadcasts the per-channel slope generically and breaks its blocked-layout conv
    chains: on the mesh model it was half the run time; rewritten, the model runs 2x faster.
    Returns how many were rewritten."""
    from onnx import helper

    nodes, n_done = [], 0
    for n in model.graph.node:
        if n.op_type != "PRelu":
            nodes.append(n)
            continue
        (x, slope), out = n.input, n.output[0]
        nodes += [helper.make_node("Relu", [x], [f"{out}/pos"], name=f"{n.name}/pos"),
                  helper.make_node("Neg", [x], [f"{out}/neg_x"], name=f"{n.name}/neg_x"),
                  helper.make_node("Relu", [f"{out}/neg_x"], [f"{out}/neg"],
                                   name=f"{n.name}/neg"),
                  helper.make_node("Mul", [f"{out}/neg", slope], [f"{out}/scaled"],
                                   name=f"{n.name}/scaled"),
                  helper.make_node("Sub", [f"{out}/pos", f"{out}/scaled"], [out], name=n.name)]
        n_done += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return n_done


def _canonical_names(model: Any) -> None:
    """Nodes, intermediate tensors and initializers renamed by position (initializers in order
    of first use): tf2onnx numbers folded constants and picks which of two merged duplicates
    keeps its name differently from run to run, and the checksums should not change."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep = {v.name for v in list(g.input) + list(g.output)}
    names: dict[str, str] = {}
    for i, n in enumerate(g.node):
        for k, name in enumerate(n.input):
            if name in inits:
                names.setdefault(name, f"const_{len([v for v in names if v in inits])}")
            if name in names:
                n.input[k] = names[name]
        n.name = f"{n.op_type}_{i}"
        for k, name in enumerate(n.output):
            if name not in keep:
                names[name] = f"{n.name}:{k}"
                n.output[k] = names[name]
    kept = []
    for old, new in names.items():
        if old in inits:
            inits[old].name = new
            kept.append(inits[old])
    del g.initializer[:]
    g.initializer.extend(kept)


def _convert(src: Path, opset: int, custom: bool) -> tuple[Any, Any]:
    """(the ONNX model, tf2onnx's output before the custom-op rewrite)."""
    import onnx
    import tf2onnx

    kw: dict[str, Any] = {}
    if custom:
        kw = {"custom_ops": dict.fromkeys(mpops.TF2ONNX_NAMES, mpops.DOMAIN),
              "extra_opset": [onnx.helper.make_opsetid(mpops.DOMAIN, 1)]}
    model, _ = tf2onnx.convert.from_tflite(str(src), opset=opset, **kw)
    raw = onnx.ModelProto()
    raw.CopyFrom(model)
    if custom:
        print("  rewrote custom ops:", mpops.replace_custom_ops(model))
        print("  PRelu as Relu:", _prelu_as_relu(model))
        outs = {o.name: o for o in model.graph.output}
        ordered = [outs[name] for name in MESH_OUTPUTS]
        del model.graph.output[:]
        model.graph.output.extend(ordered)
    _dynamic_batch(model)
    return model, raw


def _session(model_or_path: Any) -> Any:
    import onnxruntime as ort

    data = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _tflite_outputs(tflite: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the TFLite model, row by row of x."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    rows: dict[str, list[np.ndarray]] = {}
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        for o in interp.get_output_details():
            rows.setdefault(o["name"], []).append(interp.get_tensor(o["index"]).copy())
    return {k: np.concatenate(v) for k, v in rows.items()}


def _check_detector(tflite: Path, onnx_path: Path, x: np.ndarray) -> float:
    """Max |ONNX - TFLite| over the outputs, batch of 3."""
    sess = _session(str(onnx_path))
    ref = _tflite_outputs(tflite.read_bytes(), x)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    return max(float(np.abs(o.reshape(ref[n.name].shape) - ref[n.name]).max())
               for o, n in zip(got, sess.get_outputs(), strict=True))


def _trunk_tflite(src: Path) -> tuple[bytes, list[str]]:
    """The attention model cut before its custom ops: the ops none of whose inputs come from
    a custom op, with the graph outputs that survive plus the custom ops' inputs as outputs."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    sg = model.subgraphs[0]
    custom = {i for i, c in enumerate(model.operatorCodes) if c.customCode}
    tainted: set[int] = set()
    keep, cut_inputs = [], []
    for op in sg.operators:
        ins = [int(t) for t in op.inputs if t >= 0]
        if op.opcodeIndex in custom or tainted & set(ins):
            tainted.update(int(t) for t in op.outputs)
            if op.opcodeIndex in custom:
                cut_inputs += [t for t in ins if t not in tainted]
            continue
        keep.append(op)
    sg.operators = keep
    outputs = [int(t) for t in sg.outputs if int(t) not in tainted]
    sg.outputs = list(dict.fromkeys(outputs + cut_inputs))
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    names = [sg.tensors[t].name.decode() for t in sg.outputs]
    return bytes(b.Output()), names


def _with_outputs(model: Any, names: list[str]) -> Any:
    """A copy of model whose outputs are the given intermediate tensors (batch dynamic)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    return m


def _check_mesh_trunk(src: Path, model: Any, x: np.ndarray) -> float:
    """Max |ONNX - TFLite| over the trunk's outputs (mesh, face flag, custom ops' inputs)."""
    trunk, names = _trunk_tflite(src)
    ref = _tflite_outputs(trunk, x)
    known = {t for n in model.graph.node for t in n.output}
    names = [n for n in names if n in known]  # tf2onnx merged some duplicates away
    sess = _session(_with_outputs(model, names))
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    worst = 0.0
    for name, o in zip(names, got, strict=True):
        r = ref[name]
        if o.ndim == 4 and r.ndim == 4 and o.shape != r.shape:  # NCHW in ONNX
            o = o.transpose(0, 2, 3, 1)
        err = float(np.abs(o.reshape(r.shape) - r).max() / max(1.0, float(np.abs(r).max())))
        print(f"  trunk {name} {r.shape}: max rel |onnx - tflite| {err:.2e}")
        worst = max(worst, err)
    return worst


# NumPy ports of the C++ kernels (mediapipe/util/tflite/operations/*.cc, v2), one batch row.

def _ref_matrix(lm: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    lx, ly = lm[a["left_rotation_idx"], :2]
    rx, ry = lm[a["right_rotation_idx"], :2]
    r = a.get("target_rotation_radians", 0.0) - np.arctan2(ry - ly, rx - lx)
    pts = lm[list(a["subset_idxs"]), :2]
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    p = pts @ rot.T
    hi, lo = p.max(axis=0), p.min(axis=0)
    w, h = hi - lo
    c = np.array([[np.cos(-r), -np.sin(-r)], [np.sin(-r), np.cos(-r)]]) @ ((hi + lo) / 2)

    def m4(a2: np.ndarray, t: np.ndarray) -> np.ndarray:
        out = np.eye(4)
        out[:2, :2], out[:2, 3] = a2, t
        return out

    t = m4(np.eye(2), c) @ m4(np.array([[np.cos(-r), -np.sin(-r)], [np.sin(-r), np.cos(-r)]]),
                                np.zeros(2))
    ow, oh = a["output_width"], a["output_height"]
    t = t @ m4(np.diag([a["scale_x"] * w / ow, a["scale_y"] * h / oh]), np.zeros(2))
    return t @ m4(np.eye(2), np.array([-ow / 2, -oh / 2]))


def _ref_bilinear(f: np.ndarray, m: np.ndarray, oh: int, ow: int) -> np.ndarray:
    ih, iw, ch = f.shape
    xt, yt = m[0].copy(), m[1].copy()
    xt[3] += xt[0] * 0.5 + xt[1] * 0.5 - 0.5
    yt[3] += yt[0] * 0.5 + yt[1] * 0.5 - 0.5
    out = np.zeros((oh, ow, ch))
    pad = np.zeros((ih + 1, iw + 1, ch))
    pad[:ih, :iw] = f
    for y in range(oh):
        for x in range(ow):
            tx = xt[0] * x + xt[1] * y + xt[3]
            ty = yt[0] * x + yt[1] * y + yt[3]
            if tx < 0 or tx > iw - 1 or ty < 0 or ty > ih - 1:
                continue
            x0, y0 = int(np.floor(tx)), int(np.floor(ty))
            rx, ry = tx - x0, ty - y0
            up = (1 - rx) * pad[y0, x0] + rx * pad[y0, x0 + 1]
            lo = (1 - rx) * pad[y0 + 1, x0] + rx * pad[y0 + 1, x0 + 1]
            out[y, x] = ry * lo + (1 - ry) * up
    return out


def _check_custom_ops(raw: Any, model: Any, x: np.ndarray) -> float:
    """Each rewritten custom op against its NumPy port, on the inputs the model feeds it."""
    from onnx import helper

    nodes = [n for n in raw.graph.node if n.domain == mpops.DOMAIN]
    names = sorted({t for n in nodes for t in [*n.input, *n.output]})
    sess = _session(_with_outputs(model, names))
    vals = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
    worst = 0.0
    for n in nodes:
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        op = n.op_type.removeprefix("TFL_")
        got = vals[n.output[0]].astype(np.float64)
        ins = [vals[i].astype(np.float64) for i in n.input]
        ref = np.empty_like(got)
        for k in range(len(x)):
            if op == "Landmarks2TransformMatrix":
                ref[k] = _ref_matrix(ins[0][k], a)
            elif op == "TransformTensorBilinear":
                ref[k] = _ref_bilinear(ins[0][k], ins[1][k], a["output_height"],
                                       a["output_width"])
            else:
                m = ins[1][k]
                ref[k] = ins[0][k][:, :2] @ m[:2, :2].T + m[:2, 3]
        err = float(np.abs(got - ref).max() / max(1.0, float(np.abs(ref).max())))
        print(f"  {op} -> {n.output[0]}: max rel |onnx - numpy port| {err:.2e}")
        worst = max(worst, err)
    return worst


def _check_batch(path: Path, x: np.ndarray) -> float:
    sess = _session(str(path))
    name = sess.get_inputs()[0].name
    batched = sess.run(None, {name: x})
    single = sess.run(None, {name: x[:1]})
    return max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(single, batched, strict=True))


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mediapipe", type=Path, required=True, help="installed mediapipe package")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sums = []
    for (name, rel, opset), custom in ((DETECTOR, False), (MESH, True)):
        src = args.mediapipe / rel
        dst = args.out / name
        model, raw = _convert(src, opset, custom)
        side = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
        if custom:  # the net must see values in [0, 1]; a face-like input matters little
            x = rng.uniform(0, 1, (3, side, side, 3)).astype(np.float32)
            err = max(_check_mesh_trunk(src, model, x), _check_custom_ops(raw, model, x))
            what = "max rel |onnx - tflite or kernel port|"
        _canonical_names(model)  # after the checks, which look tensors up by TFLite name
        onnx.checker.check_model(model)
        onnx.save(model, str(dst))
        if not custom:
            x = rng.uniform(-1, 1, (3, side, side, 3)).astype(np.float32)
            err = _check_detector(src, dst, x)
            what = "max |onnx - tflite|"
        err_b = _check_batch(dst, x)
        print(f"{name}: {dst.stat().st_size} bytes, {what} = {err:.2e}, "
              f"batch 3 vs 1 = {err_b:.2e}")
        sums.append(f"{hashlib.sha256(dst.read_bytes()).hexdigest()}  {name}")
    (args.out / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
