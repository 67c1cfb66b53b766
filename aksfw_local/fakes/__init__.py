"""Test fakes: in-process simulators of Panorama, the Kubernetes API, ARM and Key Vault.

``server.py`` holds the loopback HTTP server and the ``FakeServer`` base every fake
builds on, ``tls.py`` the throw-away certificates and ``azure.py`` what the two Azure
fakes share.
"""
