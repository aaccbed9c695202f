"""The danvan command line, configuration and the local process supervisor (`danvan up`)."""
