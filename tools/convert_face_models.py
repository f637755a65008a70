"""Convert MediaPipe's face detector, face landmark and iris landmark models to ONNX.

Build-time only: needs tensorflow-cpu and tf2onnx, which the service never installs. Run it in
a throwaway environment::

    python3.11 -m venv /tmp/conv
    /tmp/conv/bin/pip install tensorflow-cpu tf2onnx onnxruntime
    /tmp/conv/bin/python tools/convert_face_models.py \
        --mediapipe .venv/lib/python3.11/site-packages/mediapipe

It reads the `.tflite` files shipped inside the mediapipe==0.10.21 wheel, converts each with
`tf2onnx --tflite` (opset 13), makes the batch dimension dynamic (the graphs are fully
convolutional apart from their final reshapes, which are rewritten to keep the batch), checks
the ONNX model against the TFLite interpreter on random inputs, and writes
`vision/data/models/*.onnx` plus `SHA256SUMS`. The attention mesh model
(`face_landmark_with_attention.tflite`) does not convert (custom ops), hence the separate iris
model. The full-range detector in the wheel is a sparse model and is not converted.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "vision" / "data" / "models"

# output name in vision/data/models -> path inside the mediapipe package
MODELS = {
    "face_detection_short_range.onnx": "modules/face_detection/face_detection_short_range.tflite",
    "face_landmark.onnx": "modules/face_landmark/face_landmark.tflite",
    "iris_landmark.onnx": "modules/iris_landmark/iris_landmark.tflite",
}


def _dynamic_batch(path: Path) -> None:
    """Batch dimension of every input and output -> 'batch'; Reshape shapes keep dim 0."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    # Drop stale value_info so shape inference does not pin batch=1.
    del g.value_info[:]
    inits = {i.name: i for i in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = n
    for n in g.node:
        if n.op_type != "Reshape":
            continue
        name = n.input[1]
        if name in inits:
            shape = numpy_helper.to_array(inits[name]).copy()
            if shape.size and shape[0] == 1:
                shape[0] = -1 if -1 not in shape[1:] else 0
                inits[name].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), name))
        elif name in consts:
            attr = consts[name].attribute[0]
            shape = numpy_helper.to_array(attr.t).copy()
            if shape.size and shape[0] == 1:
                shape[0] = -1 if -1 not in shape[1:] else 0
                attr.t.CopyFrom(numpy_helper.from_array(shape.astype(np.int64)))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _check(tflite: Path, onnx_path: Path) -> float:
    """Max abs difference between TFLite and ONNX Runtime on random inputs, batch 1 and 3."""
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onames = [o.name for o in sess.get_outputs()]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, *inp["shape"][1:])).astype(np.float32)
    ref = []
    for i in range(3):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        ref.append({o["name"]: interp.get_tensor(o["index"]) for o in outs})
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    worst = 0.0
    for o, name in zip(got, onames, strict=True):
        r = np.concatenate([d[name] for d in ref]) if name in ref[0] else None
        if r is None:  # tf2onnx keeps the TFLite names; fall back to position
            continue
        worst = max(worst, float(np.abs(o.reshape(r.shape) - r).max()))
    single = sess.run(None, {sess.get_inputs()[0].name: x[:1]})
    for a, b in zip(single, got, strict=True):
        worst = max(worst, float(np.abs(a[0] - b[0]).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mediapipe", type=Path, required=True, help="installed mediapipe package")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--opset", type=int, default=13)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sums = []
    for name, rel in MODELS.items():
        src = args.mediapipe / rel
        dst = args.out / name
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / name
            subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(src),
                            "--output", str(raw), "--opset", str(args.opset)], check=True)
            _dynamic_batch(raw)
            dst.write_bytes(raw.read_bytes())
        err = _check(src, dst)
        print(f"{name}: {dst.stat().st_size} bytes, max |onnx - tflite| = {err:.2e}")
        sums.append(f"{hashlib.sha256(dst.read_bytes()).hexdigest()}  {name}")
    (args.out / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
