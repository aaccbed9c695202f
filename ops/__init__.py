"""Operators' tools: finding stalled cases (`ops.stalled`) and repairing them, on the record (`ops.repairs`)."""
