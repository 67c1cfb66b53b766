"""Test fakes: in-process simulators of Panorama and the Kubernetes API."""
