"""The fakes and the local stack themselves (aksfw_local): they behave as the real services do."""
