"""aksfw: keep Panorama IP-tags in step with the LoadBalancer Services of AKS clusters.

`__version__` is the one place the version lives: pyproject.toml reads it (setuptools'
dynamic version), so `aksfw --version` prints it once installed, and CHANGELOG.md's top
release entry names it (docs/release.md).
"""

__version__ = "0.1.0"
