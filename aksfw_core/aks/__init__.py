"""Azure adapters: credentials, AKS discovery through Resource Manager, cluster access."""
