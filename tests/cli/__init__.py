"""The command line: its commands, errors and guards, and the operator verbs."""
