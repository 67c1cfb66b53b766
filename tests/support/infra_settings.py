"""Which settings the Bicep writes to the function app, which environment names the code
reads, and what may differ between the two (tests/deploy/test_infra.py).

The Bicep side comes from pycep's parse of the function app resource; the code side from
the syntax trees of `aksfw_core/**/*.py` and `function_app.py`: `environ.get("X")`,
`environ["X"]` and `os.getenv("X")`, whatever the mapping is called (`os.environ`, a
parameter named `environ`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT

CODE_FILES = (*sorted((REPO_ROOT / "aksfw_core").rglob("*.py")), REPO_ROOT / "function_app.py")

# Settings the Bicep writes that aksfw's own code does not read, each read by someone else.
READ_BY_OTHERS = {
    # azure-identity: DefaultAzureCredential picks the user-assigned managed identity by it.
    "AZURE_CLIENT_ID": "azure-identity",
    # azure-identity: the Entra ID authority of this cloud (sovereign clouds).
    "AZURE_AUTHORITY_HOST": "azure-identity",
    # Functions host: identity-based AzureWebJobsStorage (the code reads only the URIs).
    "AzureWebJobsStorage__credential": "Functions host",
    "AzureWebJobsStorage__clientId": "Functions host",
    # Functions host: telemetry, with Entra ID authentication; azure-monitor-opentelemetry
    # reads the connection string too (configure_azure_monitor's default).
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host, azure-monitor-opentelemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host",
    # Python worker: OpenTelemetry mode (trace context, worker-exported logs).
    "PYTHON_ENABLE_OPENTELEMETRY": "Functions Python worker",
}

# Names the code reads that the deployment deliberately leaves unset.
LOCAL_ONLY = {
    # A static bearer token for the local fakes; never in Azure.
    "AKSFW_DEV_TOKEN": "local fakes only",
    # The deployment passes the document inline (AKSFW_CONFIG), not as a file.
    "AKSFW_CONFIG_FILE": "local runs and the CLI",
    # A connection string: Azurite locally; Azure uses the identity-based settings.
    "AzureWebJobsStorage": "local (Azurite) connection string",
    # Alternative to the service URIs the deployment sets.
    "AzureWebJobsStorage__accountName": "alternative to the service URIs",
    # The CLI's keygen with a user and password; the app uses PANORAMA_API_KEY.
    "PANORAMA_USER": "CLI keygen only",
    "PANORAMA_PASSWORD": "CLI keygen only",
    # The CLI's kubeconfig (the kubernetes library's own default) and `aksfw watch` in a pod.
    "KUBECONFIG": "CLI kubeconfig, as kubectl reads it",
    "KUBERNETES_SERVICE_HOST": "the watcher in a pod (set by Kubernetes)",
}

# Never set in Azure, whatever else changes.
FORBIDDEN = {"AKSFW_DEV_TOKEN", "PANORAMA_USER", "PANORAMA_PASSWORD", "AzureWebJobsStorage"}


def _environ_like(node: ast.expr) -> bool:
    """`environ`, `os.environ`, `self.environ`: a mapping of environment variables."""
    if isinstance(node, ast.Name):
        return node.id == "environ"
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _first_string(args: list[ast.expr]) -> str | None:
    if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return args[0].value
    return None


def environment_names_in(source: str) -> set[str]:
    """Environment names a Python module reads by name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            environ_get = func.attr == "get" and _environ_like(func.value)
            os_getenv = (
                func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"
            )
            if environ_get or os_getenv:
                name = _first_string(node.args)
        elif isinstance(node, ast.Subscript) and _environ_like(node.value):
            name = _first_string([node.slice])
        if name is not None:
            names.add(name)
    return names


def code_environment_names(files: Iterable[Path] = CODE_FILES) -> set[str]:
    """Every environment name the app and the CLI read."""
    names: set[str] = set()
    for path in files:
        names |= environment_names_in(path.read_text(encoding="utf-8"))
    return names


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def app_settings(bicep: Mapping[str, Any]) -> dict[str, Any]:
    """name → value (as pycep renders it) of every app setting of the function apps in a
    parsed Bicep file: `siteConfig.appSettings` and `Microsoft.Web/sites/config`
    `appsettings` resources."""
    settings: dict[str, Any] = {}
    for resource in bicep.get("resources", {}).values():
        config = resource["config"]
        while "config" in config and ("condition" in config or "loop_type" in config):
            config = config["config"]
        if resource["type"] == "Microsoft.Web/sites":
            site_config = config.get("properties", {}).get("siteConfig", {})
            for entry in site_config.get("appSettings", []):
                settings[_unquote(entry["name"])] = entry["value"]
        elif resource["type"] == "Microsoft.Web/sites/config" and "appsettings" in str(
            config.get("name")
        ):
            for key, value in config.get("properties", {}).items():
                settings[_unquote(key)] = value
    return settings


def settings_problems(written: Iterable[str], read: Iterable[str]) -> list[str]:
    """What is wrong between the settings the Bicep writes and the names the code reads."""
    written, read = set(written), set(read)
    problems = [
        f"the Bicep sets {name}, which nobody reads"
        for name in sorted(written - read - set(READ_BY_OTHERS))
    ]
    problems += [
        f"the code reads {name}, which the Bicep does not set"
        for name in sorted(read - written - set(LOCAL_ONLY))
    ]
    problems += [f"the Bicep sets {name}" for name in sorted(written & FORBIDDEN)]
    problems += [
        f"READ_BY_OTHERS lists {name}, which the Bicep no longer sets"
        for name in sorted(set(READ_BY_OTHERS) - written)
    ]
    problems += [
        f"LOCAL_ONLY lists {name}, which the code no longer reads"
        for name in sorted(set(LOCAL_ONLY) - read)
    ]
    problems += [
        f"{name} is both read by aksfw and listed in READ_BY_OTHERS"
        for name in sorted(set(READ_BY_OTHERS) & read)
    ]
    return problems
