"""The inference engines' names, apart from the engines themselves (which import torch and the
runtimes), so the CLI can list them in ``--help`` without loading either."""

#: ``auto`` (the fastest installed on a CPU, torch on CUDA), ``torch`` and the ONNX runtimes.
ENGINES: tuple[str, ...] = ("auto", "torch", "onnxruntime", "openvino")
