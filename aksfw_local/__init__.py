"""aksfw on one machine: fakes of the outside systems (Resource Manager, Key Vault,
Kubernetes, Panorama), Azurite, the Functions host's queue trigger, sample events and the
whole local stack. The tests, `make demo` and the benchmarks use it; the product never
imports it (`.funcignore` keeps it out of the deployment).
"""
