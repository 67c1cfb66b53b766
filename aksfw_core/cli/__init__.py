"""The command line, `python -m aksfw_core COMMAND` (installed as `aksfw`): one module per
command, `program` that parses the line and runs one, and what they share (`command`,
`options`, `console`, `limits`, the app's API client `app_api` and its `tables`).

JSON on stdout, warnings on stderr; bad input exits 2 with a one-line reason.
"""
