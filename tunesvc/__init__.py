"""tunesvc: tune DNN operators at the resource share they will run at, and run models
with the kernels tuned for their share.

What a user calls lives here: the CLI (`tunesvc.cli`), the coordinator that spreads
task x share jobs over Ray workers (`tunesvc.coordinator`, `tunesvc.tuning`), model import
(`tunesvc.models`, `tunesvc.importer`), and the runtime lookup (`tunesvc.runtime.load`).
"""
