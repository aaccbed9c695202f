"""The read side: what the lists and reports show, computed from the event store's tables and, where a figure
needs a case's state, through the domain's own folds. The event store (`eventstore`) knows events, streams, the
feed and the tables, and nothing of the domain; this package is where the two meet for reading."""
