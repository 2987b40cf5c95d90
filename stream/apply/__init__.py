"""The one apply path shared by the live worker, the decay timer and the backfill.

decode and validate a record (``validate``), route it to the partition that owns its customer
(``routing``), load → apply → commit it with the offset in one atomic Redis commit
(``processor``, guarded by ``position``), and publish what the commit put in the outbox
(``relay``). Re-evaluation after a rules or cut-point change (``sweeps``, ``calibrate``), the
safety net for a batch that fails (``safety_net``) and dead letters (``dead_letters``) live here
too, because every mode needs them the same way.
"""
