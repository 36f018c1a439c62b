"""Rewrites of an ONNX graph before TVM imports it: shapes fixed and folded (`prep`),
decidable `If` nodes inlined (`if_nodes`), recurrent layers unrolled (`rnn`, `rnn_cells`),
integer operators TVM lacks rewritten (`quantized`), operators TVM computes otherwise than
onnxruntime rewritten (`stable`); `graph` has the tools, `imported` the graph TVM imports."""
