"""The Azure Functions app (Python v2 programming model): triggers only, no logic.

Every function forwards to `aksfw_core.functions`; see the README for what each does.
"""

import azure.functions as func

from aksfw_core import functions

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.event_grid_trigger(arg_name="event")
def resource_event(event: func.EventGridEvent) -> None:
    functions.on_event(event)


@app.timer_trigger(schedule=functions.timer_schedule(), arg_name="timer", run_on_startup=False)
def resync_timer(timer: func.TimerRequest) -> None:
    functions.on_timer(timer)


@app.queue_trigger(
    arg_name="message", queue_name="cluster-resync", connection="AzureWebJobsStorage"
)
def cluster_resync(message: func.QueueMessage) -> None:
    functions.on_resync_message(message)


@app.queue_trigger(
    arg_name="message", queue_name="panorama-updates", connection="AzureWebJobsStorage"
)
def panorama_updates(message: func.QueueMessage) -> None:
    functions.on_update_message(message)


@app.route(route="resync", methods=["POST"])
def resync(request: func.HttpRequest) -> func.HttpResponse:
    return functions.http_resync(request)


@app.route(route="status", methods=["GET"])
def status(request: func.HttpRequest) -> func.HttpResponse:
    return functions.http_status(request)
