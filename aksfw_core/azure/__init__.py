"""The Azure wing: identity, Resource Manager calls, which AKS clusters are monitored (the
inventory), how to reach each one (credentials), and what Event Grid events mean for them."""
