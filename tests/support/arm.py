"""The fake Resource Manager as the Azure tests use it: its token."""

ARM_TOKEN = "arm-dev-token"
"""The bearer token the fake accepts (`FakeArm(token=ARM_TOKEN)`, `StaticToken(ARM_TOKEN)`)."""
