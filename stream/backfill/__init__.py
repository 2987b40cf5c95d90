"""``rfm-stream backfill``: rebuild state from the topic (or from files) in event time.

``run`` is the command; ``reader`` the read → apply loop over partitions; ``jobs`` and
``child`` the parallel version (one child process per share of partitions); ``forward`` where a
backfill's misrouted records and dead letters go (never the live topics); ``file_import`` the
CSV / JSON-lines import; ``progress`` the terminal progress bar.
"""
