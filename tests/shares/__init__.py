"""Resource shares: CPU cores and threads held, GPU MPS, workers that refuse or fail, targets."""
