"""Model sources, each giving a `LoadedModel` (`base`): an ONNX file, a built-in zoo graph
(`zoo`) or a PyTorch module (`pytorch`), loaded by `sources`, with the inputs it runs on
(`inputs`, `input_values`); `onnx/` holds the rewrites TVM's ONNX import needs."""
