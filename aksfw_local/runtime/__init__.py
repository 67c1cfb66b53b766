"""Microsoft's Python Functions runtime (`azure-functions-runtime`, Python 3.13) driven as the
Functions host drives it: `proxy.py` runs in the runtime's environment and plays the host's
proxy worker, `worker.py` starts and drives it from the tests, `inputs.py` shapes each
trigger's input as the host sends it, `worker_protocol.proto` is the protocol they speak.
"""
