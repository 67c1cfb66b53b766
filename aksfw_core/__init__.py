"""aksfw: keep Panorama IP-tags in step with the LoadBalancer Services of AKS clusters."""

__version__ = "0.1.0"
