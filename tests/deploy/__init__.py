"""The deployment, checked offline: infra/, the function package, the watcher, the docs."""
