"""The live worker process: faust consumes, the :class:`~stream.live.runtime.Runtime` applies.

``runtime`` owns the Redis store, the producer, the outbox relay, the decay timer and the HTTP
server around a :class:`~stream.apply.processor.Processor`; ``faust_app`` is the faust app and
its rebalance contract; ``faust_patches`` and ``delivery`` are where faust is bent to batch
delivery with Redis deciding positions; the rest is the worker's health (back-pressure, Redis
checks and status, the outboxes a promote retired).
"""
