"""The Azure wing: events, discovery and cluster access, the Event Grid publisher, node subnets."""
