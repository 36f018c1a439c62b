"""Serving several models side by side, each in its own process held to its share.

`server.serve` is the entry point (what `tunesvc serve` calls); `spec` and `config_file`
say what is served, `placement` where, `pool`/`replica`/`worker` run it, `protocol` and
`app` speak KServe v2 over HTTP, `plan` chooses shares for latency objectives.
"""
