"""MediaPipe's TFLite custom ops rewritten as standard ONNX subgraphs, for the converter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

# tf2onnx leaves the custom ops as nodes of this domain (custom_ops=...), named as TFLite does.
DOMAIN = "mediapipe"
CUSTOM_OPS = ("Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks")
TF2ONNX_NAMES = tuple(f"TFL_{op}" for op in CUSTOM_OPS)
MIN_OPSET = 16  # GridSample


class _Builder:
    """Appends nodes and constant initializers with names unique to one replaced node."""

    def __init__(self, graph: onnx.GraphProto, prefix: str) -> None:
        self.graph = graph
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self._n = 0

    def name(self, what: str) -> str:
        self._n += 1
        return f"{self.prefix}/{what}_{self._n}"

    def const(self, value: Any, what: str = "c", dtype: Any = np.float32) -> str:
        name = self.name(what)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str | None = None,
           **attrs: Any) -> str:
        out = output or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out],
                                           name=self.name(op_type), **attrs))
        return out

    def slice(self, x: str, start: int, end: int, axis: int) -> str:
        return self.op("Slice", [x, self.const([start], "s", np.int64),
                                 self.const([end], "e", np.int64),
                                 self.const([axis], "a", np.int64)])

    def gather(self, x: str, idx: Sequence[int], axis: int) -> str:
        return self.op("Gather", [x, self.const(list(idx), "idx", np.int64)], axis=axis)

    def affine_rows(self, m: str) -> str:
        """(N, 4, 4) matrix -> (N, 3, 2): rows 0-1, columns x, y, translation, transposed, so
        that [x, y, 1] @ it is the 2-D transform (column 2 multiplies z = 0)."""
        rows = self.gather(self.gather(m, [0, 1], 1), [0, 1, 3], 2)
        return self.op("Transpose", [rows], perm=[0, 2, 1])


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _landmarks_to_transform_matrix(b: _Builder, node: onnx.NodeProto) -> None:
    """Landmarks2TransformMatrix v2 (landmarks_to_transform_matrix.cc): the 4x4 matrix taking
    output-grid pixels to input pixels for a crop around a landmark subset, rotated so that
    left -> right landmark is at target_rotation_radians, scaled by scale_x/y. atan2 is not an
    ONNX op: cos and sin of the rotation come from the normalised left -> right vector."""
    a = _attrs(node)
    subset = list(a["subset_idxs"])
    ow, oh = float(a["output_width"]), float(a["output_height"])
    sx, sy = float(a["scale_x"]), float(a["scale_y"])
    t = float(a.get("target_rotation_radians", 0.0))
    xy = b.slice(node.input[0], 0, 2, 2)  # (N, L, 2)
    d = b.op("Sub", [b.gather(xy, [a["right_rotation_idx"]], 1),
                     b.gather(xy, [a["left_rotation_idx"]], 1)])  # (N, 1, 2)
    norm = b.op("Sqrt", [b.op("ReduceSum", [b.op("Mul", [d, d]),
                                            b.const([2], "ax", np.int64)], keepdims=1)])
    u = b.op("Div", [d, norm])  # (cos, sin) of the left -> right angle theta
    # r = t - theta: (cos r, sin r) = (cos theta, sin theta) @ [[cos t, sin t], [sin t, -cos t]]
    cs = b.op("MatMul", [u, b.const([[np.cos(t), np.sin(t)], [np.sin(t), -np.cos(t)]])])
    cr, sr = b.slice(cs, 0, 1, 2), b.slice(cs, 1, 2, 2)  # (N, 1, 1)
    pts = b.gather(xy, subset, 1)  # (N, K, 2)
    px, py = b.slice(pts, 0, 1, 2), b.slice(pts, 1, 2, 2)
    rx = b.op("Sub", [b.op("Mul", [cr, px]), b.op("Mul", [sr, py])])
    ry = b.op("Add", [b.op("Mul", [sr, px]), b.op("Mul", [cr, py])])
    half = b.const(0.5)
    ext = {}
    for k, v in (("x", rx), ("y", ry)):
        hi = b.op("ReduceMax", [v], axes=[1], keepdims=1)
        lo = b.op("ReduceMin", [v], axes=[1], keepdims=1)
        ext[k] = (b.op("Sub", [hi, lo]), b.op("Mul", [b.op("Add", [hi, lo]), half]))
    (w, mx), (h, my) = ext["x"], ext["y"]
    # centre back by -r; then shift(centre) * rot(-r) * scale * shift(-out/2)
    cx = b.op("Add", [b.op("Mul", [cr, mx]), b.op("Mul", [sr, my])])
    cy = b.op("Sub", [b.op("Mul", [cr, my]), b.op("Mul", [sr, mx])])
    scx = b.op("Mul", [w, b.const(sx / ow)])
    scy = b.op("Mul", [h, b.const(sy / oh)])
    a00 = b.op("Mul", [cr, scx])
    a01 = b.op("Mul", [sr, scy])
    a10 = b.op("Neg", [b.op("Mul", [sr, scx])])
    a11 = b.op("Mul", [cr, scy])
    hx, hy = b.const(-ow / 2), b.const(-oh / 2)
    t0 = b.op("Add", [cx, b.op("Add", [b.op("Mul", [a00, hx]), b.op("Mul", [a01, hy])])])
    t1 = b.op("Add", [cy, b.op("Add", [b.op("Mul", [a10, hx]), b.op("Mul", [a11, hy])])])
    zero = b.op("Mul", [a00, b.const(0.0)])  # (N, 1, 1) zeros, batch taken from the input
    one = b.op("Add", [zero, b.const(1.0)])
    rows = [b.op("Concat", r, axis=2) for r in ([a00, a01, zero, t0], [a10, a11, zero, t1],
                                                [zero, zero, one, zero], [zero, zero, zero, one])]
    b.op("Concat", rows, node.output[0], axis=1)


def _transform_tensor_bilinear(b: _Builder, node: onnx.NodeProto, in_hw: tuple[int, int]
                               ) -> None:
    """TransformTensorBilinear v2 (transform_tensor_bilinear.cc) on an NHWC tensor: output
    pixel (x, y) samples the input bilinearly at M * (x + 0.5, y + 0.5) - 0.5, zero when that
    point is outside [0, W-1] x [0, H-1]. GridSample with align_corners=1 and zero padding,
    masked to the op's in-bounds test."""
    a = _attrs(node)
    oh, ow = int(a["output_height"]), int(a["output_width"])
    ih, iw = in_hw
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float32)
    grid = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs)], axis=-1).reshape(1, oh * ow, 3)
    tc = b.op("Sub", [b.op("MatMul", [b.const(grid, "grid"), b.affine_rows(node.input[1])]),
                      b.const([0.5, 0.5])])  # (N, oh*ow, 2) input pixels (x, y)
    tc = b.op("Reshape", [tc, b.const([-1, oh, ow, 2], "shape", np.int64)])
    inside = b.op("And", [b.op("GreaterOrEqual", [tc, b.const([0.0, 0.0])]),
                          b.op("LessOrEqual", [tc, b.const([iw - 1.0, ih - 1.0])])])
    mask = b.op("ReduceMin", [b.op("Cast", [inside], to=onnx.TensorProto.FLOAT)],
                axes=[3], keepdims=1)  # (N, oh, ow, 1)
    g = b.op("Sub", [b.op("Mul", [tc, b.const([2.0 / (iw - 1), 2.0 / (ih - 1)])]),
                     b.const(1.0)])
    nchw = b.op("Transpose", [node.input[0]], perm=[0, 3, 1, 2])
    sampled = b.op("GridSample", [nchw, g], mode="bilinear", padding_mode="zeros",
                   align_corners=1)
    b.op("Mul", [b.op("Transpose", [sampled], perm=[0, 2, 3, 1]), mask], node.output[0])


def _transform_landmarks(b: _Builder, node: onnx.NodeProto) -> None:
    """TransformLandmarks v2 (transform_landmarks.cc), 2-D landmarks (N, K, 2): x, y -> the
    first two rows of the 4x4 matrix applied to (x, y, 0, 1)."""
    pts = node.input[0]
    ones = b.op("Add", [b.op("Mul", [b.slice(pts, 0, 1, 2), b.const(0.0)]), b.const(1.0)])
    xy1 = b.op("Concat", [pts, ones], axis=2)
    b.op("MatMul", [xy1, b.affine_rows(node.input[1])], node.output[0])


def _nhwc_hw(model: onnx.ModelProto, name: str) -> tuple[int, int]:
    """H, W of an NHWC tensor, from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    for v in list(inferred.graph.value_info) + list(inferred.graph.output):
        if v.name == name:
            dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
            if len(dims) == 4 and dims[1] > 0 and dims[2] > 0:
                return dims[1], dims[2]
    raise ValueError(f"no static NHWC shape for {name}")


def replace_custom_ops(model: onnx.ModelProto) -> dict[str, int]:
    """Rewrites every MediaPipe custom-op node in place; returns how many of each."""
    g = model.graph
    rewrites: dict[str, Callable[[_Builder, onnx.NodeProto], None]] = {
        "Landmarks2TransformMatrix": _landmarks_to_transform_matrix,
        "TransformLandmarks": _transform_landmarks,
    }
    counts: dict[str, int] = {}
    out_nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(list(g.node)):
        op = node.op_type.removeprefix("TFL_")
        if node.domain != DOMAIN:
            out_nodes.append(node)
            continue
        b = _Builder(g, f"{op}_{i}")
        if op == "TransformTensorBilinear":
            _transform_tensor_bilinear(b, node, _nhwc_hw(model, node.input[0]))
        elif op in rewrites:
            rewrites[op](b, node)
        else:
            raise ValueError(f"no ONNX rewrite for custom op {node.op_type}")
        out_nodes.extend(b.nodes)  # inputs are defined before `node`, so order stays valid
        counts[op] = counts.get(op, 0) + 1
    del g.node[:]
    g.node.extend(out_nodes)
    opsets = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < MIN_OPSET:
            raise ValueError(f"opset {o.version} < {MIN_OPSET} (GridSample)")
    return counts
