"""``rfm-stream demo`` (``run``) and the real local servers it, the tests and the benchmarks
start on free ports (``embedded``: the Tansu broker and redis-server)."""
