"""The whole app through faults and hostile input, the watcher end to end, and the demo."""
