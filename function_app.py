"""The Azure Functions app (Python v2 programming model).

Triggers stay thin and call `aksfw_core`; they arrive with the Functions issue. Until then
the engine runs from the command line: `python -m aksfw_core --help`.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
