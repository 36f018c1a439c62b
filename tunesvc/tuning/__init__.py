"""`tunesvc tune` in parts: the request checked and planned into jobs (`planning`), spent under
a model-level budget (`budget`, `job_sources`), dispatched to share-pinned Ray workers
(`dispatch`), run end to end (`execute`); `estimate` is the one latency-estimate formula."""
