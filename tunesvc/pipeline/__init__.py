"""From a loaded model to TVM and back: the Relax module and its tuning tasks (`importer`),
the algorithm of each convolution (`conv_algorithms`, `winograd`) and compiling with the
stored schedules (`compiler`). Task extraction and compiling share these passes."""
