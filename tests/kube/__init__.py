"""The Kubernetes wing: listing Services and the Service watcher."""
