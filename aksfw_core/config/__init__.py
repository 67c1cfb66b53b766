"""The configuration document (`AKSFW_CONFIG` inline JSON or `AKSFW_CONFIG_FILE` path),
parsed once into one frozen, validated `Settings`.

Every error names the field at fault. Secrets never sit in the document: the Panorama
key comes from `PANORAMA_API_KEY`, cluster tokens from Key Vault secrets named here.
`model` holds what the document becomes, `reader` how one object is read (an unknown key
refused with the known key it likely misspells), `panorama` the `panorama` section and the
checks the command line shares, `document` the rest and what the Functions app requires
at start-up (`require_app_settings`, which `aksfw config check` shares).
"""

from aksfw_core.config.document import (
    load_settings,
    parse_settings,
    require_app_settings,
    settings_from,
)
from aksfw_core.config.model import (
    PUBLIC_ARM_ENDPOINT,
    AzureAccess,
    ClusterAccessKind,
    ClusterConfig,
    Discovery,
    PanoramaSettings,
    PanoramaTargets,
    ResyncConfig,
    Settings,
    TokenAccess,
)
from aksfw_core.config.panorama import (
    CA_CERTIFICATES_SETTING,
    batch_size,
    ca_bundle,
    ca_certificates,
    certificate_sha256,
    check_trust,
    firewall_serial,
    panorama_host,
    pem_file,
    tag_timeout_s,
    vsys_name,
)

__all__ = [
    "CA_CERTIFICATES_SETTING",
    "PUBLIC_ARM_ENDPOINT",
    "AzureAccess",
    "ClusterAccessKind",
    "ClusterConfig",
    "Discovery",
    "PanoramaSettings",
    "PanoramaTargets",
    "ResyncConfig",
    "Settings",
    "TokenAccess",
    "batch_size",
    "ca_bundle",
    "ca_certificates",
    "certificate_sha256",
    "check_trust",
    "firewall_serial",
    "load_settings",
    "panorama_host",
    "parse_settings",
    "pem_file",
    "require_app_settings",
    "settings_from",
    "tag_timeout_s",
    "vsys_name",
]
