"""tunesvc: tune DNN operators at the resource share they will run at, and run models
with the kernels tuned for their share.

What a user calls lives here: the CLI (`tunesvc.cli`), the coordinator that spreads
task x share jobs over Ray workers (`tunesvc.tuning.dispatch`, `tunesvc.tuning.execute`), model import
(`tunesvc.models.sources`, `tunesvc.pipeline.importer`), and the runtime lookup (`tunesvc.runtime.load`).
"""
