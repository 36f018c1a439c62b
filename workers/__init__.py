"""What runs under a resource share: the share contract and its backends (`shares/`: cpu
cores and threads, gpu MPS), building and measuring candidates (`measure`), the search
(`search`, `transfer`), one tuning job (`tuner`, with `warm` tools kept across jobs),
and the Ray actors that host them (`actor`). Nothing here talks to the user."""
