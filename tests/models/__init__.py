"""Model sources and import: ONNX rewrites, PyTorch, real models, failures in one line, bisect."""
