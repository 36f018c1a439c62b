"""What runs under a resource share: share description and pinning (`share`, `pinning`,
`cores`, `mps`), building and measuring candidates (`measure`), one tuning job (`tuner`),
and the Ray actors that host them (`actor`). Nothing here talks to the user."""
