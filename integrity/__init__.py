"""Tamper evidence that does not trust PostgreSQL: signed Merkle checkpoints of every stream head, kept in a
log outside the database, and the checks that compare the database with them and with Temporal's record.

`integrity.proofcheck` (with `integrity.merkle`) needs only the standard library and `cryptography`, so an
inspectorate can check a case's proof without anything else of the system. Nothing here imports the database
driver or Temporal at package level.
"""
