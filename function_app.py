"""The Azure Functions app (Python v2 programming model): triggers only, no logic.

Every function forwards to `aksfw_core.functions`; see docs/app.md for what each does.
The host passes `context` (its trace context is the parent of the function's span);
callers outside the host may leave it out.
"""

import azure.functions as func

from aksfw_core import functions
from aksfw_core.functions import NO_CONTEXT

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.event_grid_trigger(arg_name="event")
def resource_event(event: func.EventGridEvent, context: func.Context = NO_CONTEXT) -> None:
    functions.on_event(event, context)


@app.timer_trigger(schedule=functions.timer_schedule(), arg_name="timer", run_on_startup=False)
def resync_timer(timer: func.TimerRequest, context: func.Context = NO_CONTEXT) -> None:
    functions.on_timer(timer, context)


@app.queue_trigger(
    arg_name="message", queue_name="cluster-resync", connection="AzureWebJobsStorage"
)
def cluster_resync(message: func.QueueMessage, context: func.Context = NO_CONTEXT) -> None:
    functions.on_resync_message(message, context)


@app.queue_trigger(
    arg_name="message", queue_name="panorama-updates", connection="AzureWebJobsStorage"
)
def panorama_updates(message: func.QueueMessage, context: func.Context = NO_CONTEXT) -> None:
    functions.on_update_message(message, context)


@app.route(route="resync", methods=["POST"], trigger_arg_name="request")
def resync(request: func.HttpRequest, context: func.Context = NO_CONTEXT) -> func.HttpResponse:
    return functions.http_resync(request, context)


@app.route(route="status", methods=["GET"], trigger_arg_name="request")
def status(request: func.HttpRequest, context: func.Context = NO_CONTEXT) -> func.HttpResponse:
    return functions.http_status(request, context)


@app.route(route="replay", methods=["POST"], trigger_arg_name="request")
def replay(request: func.HttpRequest, context: func.Context = NO_CONTEXT) -> func.HttpResponse:
    return functions.http_replay(request, context)


@app.route(route="uninstall", methods=["POST"], trigger_arg_name="request")
def uninstall(request: func.HttpRequest, context: func.Context = NO_CONTEXT) -> func.HttpResponse:
    return functions.http_uninstall(request, context)
