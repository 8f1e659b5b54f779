"""Core ML conversion in a child process (``python -m visionforge.export._coreml_worker``).

Why a child process: coremltools imports TensorFlow when it is installed, and
TensorFlow's native libraries loaded next to PyTorch's (Triton) can crash the
interpreter (segfault). Isolating the conversion keeps a crash from taking the
other exporters down; the child also hides TensorFlow from coremltools, which
does not need it to convert PyTorch models.
"""

from __future__ import annotations

import json
import platform
import sys


def main(argv: list[str]) -> int:
    ts_path, out_path, inputs_npy, result_json = argv
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # see module docstring
    import warnings

    warnings.simplefilter("ignore")
    import coremltools as ct
    import numpy as np
    import torch

    x = np.load(inputs_npy)
    traced = torch.jit.load(ts_path, map_location="cpu").eval()
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="input", shape=x.shape, dtype=np.float32)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,  # keep parity with PyTorch where it can be run
        minimum_deployment_target=ct.target.iOS16,
    )
    mlmodel.save(out_path)
    # Validate: reload the saved package's spec without the runtime and check its interface.
    reloaded = ct.models.MLModel(out_path, skip_model_load=True)
    spec = reloaded.get_spec()
    inputs = [
        {"name": i.name, "shape": list(i.type.multiArrayType.shape)} for i in spec.description.input
    ]
    outputs = [o.name for o in spec.description.output]
    if inputs[0]["shape"] != list(x.shape):
        raise RuntimeError(f"Core ML input shape {inputs[0]['shape']} != {list(x.shape)}")
    result = {
        "spec_version": spec.specificationVersion,
        "inputs": inputs,
        "outputs": outputs,
        "coremltools": ct.__version__,
        "predicted": False,
    }
    if platform.system() == "Darwin":
        model = ct.models.MLModel(out_path)
        pred = model.predict({"input": x})
        result["predicted"] = True
        np.savez(result_json + ".npz", *[np.asarray(pred[name]) for name in outputs])
    with open(result_json, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
