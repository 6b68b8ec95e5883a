"""Runs the ONNX models pente exported with onnxruntime and checks them against pente.

    python scripts/onnx_check.py DIR [--mnist data/mnist --cnn NAME --cnn-wrong N]

For every DIR/NAME.onnx with a DIR/NAME.test.safetensors beside it (written by `pente export
--onnx DIR/NAME.onnx --test-data`), feeds its `input.*` tensors to onnxruntime and checks each
`output.*` tensor within 1e-5 (absolute plus relative, float32). With --cnn, also scores that
model on the MNIST test set (inputs normalized as its metadata says) and checks that it gets
exactly --cnn-wrong images wrong, the count `pente digits eval` reported for the same weights.
Exits 1 on any mismatch.
"""

import argparse
import gzip
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

TOL = 1e-5


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_outputs(model_path, data_path):
    sess = session(model_path)
    data = load_file(str(data_path))
    feeds = {}
    for i in sess.get_inputs():
        value = data["input." + i.name]
        feeds[i.name] = value.astype(np.int64) if i.type == "tensor(int64)" else value
    names = [o.name for o in sess.get_outputs()]
    ok = True
    for name, got in zip(names, sess.run(names, feeds)):
        want = data["output." + name]
        if got.shape != want.shape:
            print(f"FAIL {model_path.name}: {name} has shape {got.shape}, pente's {want.shape}")
            ok = False
            continue
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bound = TOL + TOL * np.abs(want.astype(np.float64))
        worst = float(err.max())
        if not np.all(err <= bound):
            i = np.unravel_index(np.argmax(err - bound), err.shape)
            print(f"FAIL {model_path.name}: {name}{list(i)} = {got[i]} but pente gives {want[i]} (max |diff| {worst:.3g})")
            ok = False
        else:
            print(f"ok   {model_path.name}: {name} {list(got.shape)} matches pente (max |diff| {worst:.3g})")
    return ok


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def count_wrong(model_path, mnist):
    sess = session(model_path)
    meta = sess.get_modelmeta().custom_metadata_map
    mean = np.float32(meta["pente.normalization.mean"])
    std = np.float32(meta["pente.normalization.std"])
    # As pente's Normalization::extend: byte · (1 / (255·std)) − mean/std, in float32.
    scale = np.float32(1.0) / (np.float32(255.0) * std)
    shift = mean / std
    images = idx(mnist / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = idx(mnist / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x = images.astype(np.float32) * scale - shift
    inp = sess.get_inputs()[0]
    batch = inp.shape[0]
    if len(x) % batch:
        sys.exit(f"{model_path.name}: its batch {batch} does not divide the {len(x)} test images")
    wrong = 0
    for start in range(0, len(x), batch):
        (logits,) = sess.run(None, {inp.name: x[start : start + batch]})
        # Ties go to the lowest class, as in pente's accuracy.
        wrong += int(np.sum(np.argmax(logits, axis=1) != labels[start : start + batch]))
    return wrong, len(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--mnist", type=pathlib.Path, default=pathlib.Path("data/mnist"))
    parser.add_argument("--cnn", help="name of the digits CNN's model in DIR, to score on MNIST")
    parser.add_argument("--cnn-wrong", type=int, help="how many test images pente gets wrong with it")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}")
    models = sorted(args.dir.glob("*.onnx"))
    if not models:
        sys.exit(f"no .onnx file in {args.dir}")
    ok = True
    for m in models:
        data = m.with_suffix(".test.safetensors")
        if not data.exists():
            sys.exit(f"{m}: no test data beside it ({data.name})")
        ok &= check_outputs(m, data)
    if args.cnn:
        wrong, total = count_wrong(args.dir / (args.cnn + ".onnx"), args.mnist)
        acc = 100.0 * (total - wrong) / total
        if wrong != args.cnn_wrong:
            print(f"FAIL {args.cnn}: onnxruntime gets {wrong} of {total} wrong ({acc:.2f} %), pente {args.cnn_wrong}")
            ok = False
        else:
            print(f"ok   {args.cnn}: onnxruntime's test accuracy {acc:.2f} % ({wrong} of {total} wrong) is pente's exactly")
    print(f"{sum(1 for _ in models)} models checked: {'all match' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
