"""Every Dynamic Address Group example in README.md and docs/ uses a tag that the deploy
the same documentation describes would produce; followed literally, no group stays empty.

The DAG examples are the single-quoted tags of a match expression (`'aks.prod1.web' or
'aks_public.prod1.api'`, in tables, prose, diagrams or code). What the docs deploy is read
from their own shell blocks: the `azd env set` values (`AKSFW_CLUSTERS` with its aliases
and selectors among them) and the clusters `az aks update --tags` tags. Those values go
through `infra/main.parameters.json` as azd substitutes them (JSON for array and object
parameters, azd 1.23.4 and later), the Bicep builds the app's configuration document from
them, and the app's own discovery reads the tagged clusters from the fake Resource
Manager. Each example tag must then be one aksfw's tag rules give one of the clusters it
found: its tag name (alias or AKS name), a selector configured for it, a Service name or
label that `compute_tags` turns into exactly that tag; and an opt-in tag (node subnet,
egress, namespace, annotation) only where the documented deploy turns its option on.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import StaticToken
from aksfw_core.azure.inventory import DiscoveryReport, Inventory, MonitoredCluster
from aksfw_core.config import Settings, parse_settings
from aksfw_core.rules import annotations
from aksfw_core.rules.model import Service
from aksfw_core.rules.selectors import named_selector
from aksfw_core.rules.tag_options import ALL_NAMESPACES, TagOptions
from aksfw_core.rules.tags import (
    ANNOTATION_WORD,
    EGRESS_WORD,
    NAMESPACE_WORD,
    NODE_SUBNET_TAG_NAME,
    compute_tags,
    egress_tag,
    node_subnet_tag,
    owns,
    registrable,
)
from aksfw_local.fakes.arm import FakeArm
from tests.deploy.test_docs import DOCS, blocks
from tests.deploy.test_infra import MAIN, SUB, bicep, config_document, main_parameters
from tests.support import REPO_ROOT
from tests.support.arm import ARM_TOKEN

# A match expression quotes each tag in single quotes; a tag holds no quote or whitespace.
DAG_TAG = re.compile(r"'(aks(?:_[^.'\s]*)?\.[^'\s]*)'")
TAG_PARTS = re.compile(r"aks(?:_(?P<selector>[^.]+))?\.(?P<cluster>[^.]+)\.(?P<rest>.+)")
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # a Service's metadata.name
DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace's
PLACEHOLDERS = {"<subscription-id>": SUB}
"""What the docs leave to the reader to fill in, filled in."""
DECIDING = {
    "AKSFW_CLUSTERS",
    "AKSFW_DISCOVERY_TAG",
    "AKSFW_MONITORED_SUBSCRIPTION_IDS",
    "AKSFW_REGISTER_NODE_SUBNETS",
    "AKSFW_REGISTER_EGRESS",
    "AKSFW_NAMESPACE_TAGS",
    "AKSFW_ANNOTATION_TAG_NAMESPACES",
}
"""The azd values that decide which clusters are monitored, what their tags are called and
which opt-in tags they get; the others (Panorama, network, alerts) stay at their defaults
here."""

FOREIGN = {
    ("docs/troubleshooting.md", "aks.aks-prod1.web"): (
        "the Azure plugin's tag for aks-prod1, next to aksfw's in the migration's filter"
    ),
}
"""Quoted tags the docs show on purpose as someone else's, with why."""


class Example(NamedTuple):
    path: str
    line: int
    tag: str


def dag_examples() -> list[Example]:
    found = []
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in DAG_TAG.finditer(line):
                found.append(Example(str(path.relative_to(REPO_ROOT)), number, match.group(1)))
    return found


EXAMPLES = dag_examples()
OWN_EXAMPLES = [e for e in EXAMPLES if (e.path, e.tag) not in FOREIGN]


def commands(path: Path) -> Iterator[list[str]]:
    """Each command line of the page's shell blocks, as the shell splits it."""
    for block in blocks(path):
        if block.language not in {"sh", "bash", "shell"}:
            continue
        for line in block.text.replace("\\\n", " ").splitlines():
            if words := shlex.split(line, comments=True):
                yield words


class DocumentedDeploy(NamedTuple):
    environment: dict[str, str]
    """The docs' `azd env set NAME VALUE` of the `DECIDING` names, placeholders filled in."""
    tagged: list[tuple[str, str, dict[str, str]]]
    """(resource group, name, tags) of each cluster an `az aks update --tags` tags."""


def documented_deploy() -> DocumentedDeploy:
    environment: dict[str, str] = {}
    tagged = []
    for path in DOCS:
        for words in commands(path):
            if words[:3] == ["azd", "env", "set"] and len(words) == 5 and words[3] in DECIDING:
                name, value = words[3], words[4]
                assert "$" not in value, f"{path.name}: {name} is not written out"
                for placeholder, filled in PLACEHOLDERS.items():
                    value = value.replace(placeholder, filled)
                given = environment.setdefault(name, value)
                if name in {"AKSFW_CLUSTERS", "AKSFW_DISCOVERY_TAG"}:
                    assert given == value, f"{path.name}: {name} documented twice, differently"
            if words[:3] == ["az", "aks", "update"] and "--tags" in words:
                values = words[words.index("--tags") + 1 :]
                values = values[: next((i for i, w in enumerate(values) if w[:1] == "-"), None)]
                tags = dict(value.split("=", 1) for value in values)
                group, name = (
                    _option(words, "--resource-group", "-g"),
                    _option(words, "--name", "-n"),
                )
                tagged.append((group, name, tags))
    # The node-subnet tag is opt-in: a page that shows it says how to turn it on.
    if any(e.tag.endswith(f".{NODE_SUBNET_TAG_NAME}") for e in EXAMPLES) and any(
        "AKSFW_REGISTER_NODE_SUBNETS=true" in path.read_text() for path in DOCS
    ):
        environment.setdefault("AKSFW_REGISTER_NODE_SUBNETS", "true")
    return DocumentedDeploy(environment, tagged)


def _option(words: list[str], *names: str) -> str:
    at = next(i for i, word in enumerate(words) if word in names)
    return words[at + 1]


def azd_parameters(environment: Mapping[str, str]) -> dict[str, Any]:
    """The Bicep parameters azd passes for this environment: `${NAME}` or `${NAME=default}`
    of main.parameters.json, JSON for array and object parameters (azd 1.23.4 and later);
    an unset value without a default leaves the parameter out (the Bicep default holds)."""
    declared = bicep(MAIN)["parameters"]
    parameters: dict[str, Any] = {}
    for name, entry in main_parameters().items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"])
        assert match, name
        text = environment.get(match.group(1), match.group(2))
        if text is None:
            continue
        kind = declared[name]["type"]
        if kind in {"array", "object"}:
            parameters[name] = json.loads(text)
        elif kind == "bool":
            parameters[name] = text.lower() == "true"
        elif kind == "int":
            parameters[name] = int(text)
        else:
            parameters[name] = text
    return parameters


def documented_document(deploy: DocumentedDeploy) -> dict[str, Any]:
    """AKSFW_CONFIG as the Bicep builds it for the documented deploy."""
    parameters = azd_parameters(deploy.environment)
    return config_document(**{"panoramaHost": "panorama.example.com", **parameters})


@pytest.fixture(scope="module")
def deployed_settings() -> Settings:
    """The settings the app starts with after the documented deploy (its opt-in tags)."""
    return parse_settings(documented_document(documented_deploy()))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> DiscoveryReport:
    """What the app's discovery finds once the documented deploy runs: the tagged clusters
    of the docs in the fake Resource Manager, the configuration the Bicep builds."""
    deploy = documented_deploy()
    document = documented_document(deploy)
    bundle = tmp_path_factory.mktemp("arm") / "ca.pem"
    with FakeArm(token=ARM_TOKEN) as arm, pytest.MonkeyPatch.context() as patch:
        bundle.write_bytes(arm.ca_pem)
        patch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        for group, name, tags in deploy.tagged:
            arm.add_cluster(SUB, group, name, tags=tags)
        settings = parse_settings(document, arm_endpoint=arm.url)
        report = ClusterDiscovery(settings, StaticToken(ARM_TOKEN)).survey()
    assert arm.errors == []
    return report


def problem(tag: str, inventory: Inventory, settings: Settings | None = None) -> str | None:
    """Why no cluster of `inventory` gets `tag` by aksfw's tag rules, with the opt-in tags
    `settings` turn on; None when one does."""
    parts = TAG_PARTS.fullmatch(tag)
    if parts is None or not registrable(tag):
        return "not a tag aksfw writes"
    names = sorted(c.tag_name for c in inventory.clusters)
    cluster = next((c for c in inventory.clusters if c.tag_name == parts["cluster"]), None)
    if cluster is None:
        return f"no documented cluster tags as {parts['cluster']!r}; they tag as {names}"
    if not owns(cluster.tag_name, tag):
        return f"not a tag of {cluster.tag_name}"
    if parts["selector"] is not None:
        return _selector_problem(tag, cluster, parts["selector"], parts["rest"])
    if parts["rest"] == NODE_SUBNET_TAG_NAME:
        if cluster.node_subnets and tag == node_subnet_tag(cluster.tag_name):
            return None
        return "node subnets are not turned on for it in the documented deploy"
    if parts["rest"].split(".")[0] == EGRESS_WORD:
        return _egress_problem(tag, cluster, parts["rest"])
    options = _options(cluster, settings or Settings())
    if parts["rest"].startswith(f"{NAMESPACE_WORD}."):
        namespace = parts["rest"].removeprefix(f"{NAMESPACE_WORD}.")
        if not options.namespace_tags:
            return "namespace tags are not turned on for it in the documented deploy"
        if not DNS_1123.fullmatch(namespace):
            return f"{namespace!r} cannot be a namespace"
        found = _tags(cluster, Service(namespace, "svc", {}, ("10.0.0.1",)), options)
        return None if tag in found else "no namespace gives it"
    if parts["rest"].startswith(f"{ANNOTATION_WORD}."):
        value = parts["rest"].removeprefix(f"{ANNOTATION_WORD}.")
        opened = sorted(options.annotation_namespaces)
        if not opened:
            return "annotation tags are open to no namespace of it in the documented deploy"
        namespace = "default" if ALL_NAMESPACES in opened else opened[0]
        service = Service(
            namespace, "svc", {}, ("10.0.0.1",), annotations={annotations.TAGS: value}
        )
        return None if tag in _tags(cluster, service, options) else "no annotation gives it"
    if parts["rest"].startswith("svc."):
        label = parts["rest"].removeprefix("svc.")
        for at in [i for i, c in enumerate(label) if c == "."]:  # keys and values hold dots
            labels = {label[:at]: label[at + 1 :]}
            if tag in _tags(cluster, Service("default", "svc", labels, ("10.0.0.1",))):
                return None
        return "no label gives it"
    if not DNS_1035.fullmatch(parts["rest"]):
        return f"{parts['rest']!r} cannot be a Service's name"
    if tag in _tags(cluster, Service("default", parts["rest"], {}, ("10.0.0.1",))):
        return None
    return "no Service gives it"


def _egress_problem(tag: str, cluster: MonitoredCluster, rest: str) -> str | None:
    """`aks.<cluster>.egress`, or a gateway's `aks.<cluster>.egress.<namespace>.<gateway>`."""
    if not cluster.egress_tags:
        return "egress tags are not turned on for it in the documented deploy"
    if rest == EGRESS_WORD:
        wanted = egress_tag(cluster.tag_name)
    else:
        namespace, _, gateway = rest.removeprefix(f"{EGRESS_WORD}.").partition(".")
        if not DNS_1123.fullmatch(namespace) or not gateway:
            return f"{rest!r} is not egress.<namespace>.<gateway>"
        wanted = egress_tag(cluster.tag_name, namespace, gateway)
    # The egress entries join the Services' tags under the same rules.
    found = compute_tags(cluster.tag_name, [], entries={"20.0.0.1": [wanted]})
    return None if tag in found.tags.get("20.0.0.1", ()) else "no outbound address gives it"


def _options(cluster: MonitoredCluster, settings: Settings) -> TagOptions:
    """The cluster's namespace and annotation tag options, as the app resolves them."""
    return settings.tag_options_for(settings.listed(cluster.id))


def _selector_problem(tag: str, cluster: MonitoredCluster, name: str, service: str) -> str | None:
    selector = next((s for s in cluster.selectors if s.name == name), None)
    if selector is None:
        configured = [s.name for s in cluster.selectors]
        return f"{cluster.tag_name} has no selector {name!r}; it has {configured}"
    if not DNS_1035.fullmatch(service):
        return f"{service!r} cannot be a Service's name"
    # Any Service the selector matches: the rules spell its tag so.
    matching = named_selector(name, "", selector.namespace)
    namespace = selector.namespace or "default"
    tags = compute_tags(
        cluster.tag_name, [Service(namespace, service, {}, ("10.0.0.1",))], [matching]
    )
    return None if tag in tags.tags.get("10.0.0.1", ()) else "no matching Service gives it"


def _tags(
    cluster: MonitoredCluster, service: Service, options: TagOptions | None = None
) -> frozenset[str]:
    return compute_tags(cluster.tag_name, [service], cluster.selectors, options).tags.get(
        "10.0.0.1", frozenset()
    )


def test_the_docs_hold_dag_examples_to_check():
    pages = {e.path for e in EXAMPLES}
    assert {"README.md", "docs/tags.md"} <= pages
    assert len(OWN_EXAMPLES) >= 12
    for (path, tag), why in FOREIGN.items():  # an exception no page needs any more goes
        assert any((e.path, e.tag) == (path, tag) for e in EXAMPLES), (path, tag, why)


def test_the_documented_deploy_monitors_every_cluster_the_docs_tag(deployed):
    assert deployed.skipped == ()
    assert sorted(c.tag_name for c in deployed.inventory.clusters) == ["aks-prod2", "prod1"]


@pytest.mark.parametrize("example", OWN_EXAMPLES, ids=lambda e: f"{e.path}:{e.line}:{e.tag}")
def test_every_dag_example_uses_a_tag_the_documented_deploy_produces(
    example, deployed, deployed_settings
):
    assert problem(example.tag, deployed.inventory, deployed_settings) is None


def test_the_foreign_examples_are_not_aksfw_s(deployed, deployed_settings):
    for path, tag in FOREIGN:
        assert problem(tag, deployed.inventory, deployed_settings) is not None, (path, tag)


def test_the_docs_turn_on_the_opt_in_tags_their_examples_use(deployed, deployed_settings):
    # The pages on egress, namespace and annotation tags say how to turn them on in azd,
    # and their quoted examples are checked against that.
    environment = documented_deploy().environment
    assert environment["AKSFW_REGISTER_EGRESS"] == "true"
    assert environment["AKSFW_NAMESPACE_TAGS"] == "true"
    assert json.loads(environment["AKSFW_ANNOTATION_TAG_NAMESPACES"]) == ["shop", "payments"]
    assert all(cluster.egress_tags for cluster in deployed.inventory.clusters)
    assert deployed_settings.namespace_tags is True
    assert deployed_settings.annotation_namespaces == frozenset({"shop", "payments"})
    for family in (".egress", ".ns.", ".tag."):
        assert any(family in e.tag for e in OWN_EXAMPLES), family


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("aks.aks-prod1.web", "no documented cluster tags as 'aks-prod1'"),  # it has an alias
        ("aks.prod2.svc.app.web", "no documented cluster tags as 'prod2'"),
        ("aks_private.prod1.web", "prod1 has no selector 'private'"),
        ("aks_public.aks-prod2.web", "aks-prod2 has no selector 'public'"),
        ("aks.prod1.Web", "cannot be a Service's name"),
        ("aks.prod1", "not a tag aksfw writes"),
        ("aks.prod1.svc.tier", "no label gives it"),
        ("aksfw.prod1.web", "not a tag aksfw writes"),
        ("aks.prod1.egress.Shop.gw", "is not egress.<namespace>.<gateway>"),
        ("aks.prod1.egress.shop", "is not egress.<namespace>.<gateway>"),
        ("aks.prod1.ns.Payments", "cannot be a namespace"),
        ("aks.prod1.tag.pci.dss", "no annotation gives it"),  # a value is one segment
        ("aks.prod1.ns." + "n" * 63 + ".x", "cannot be a namespace"),
    ],
)
def test_a_tag_the_deploy_would_not_produce_is_caught(tag, why, deployed, deployed_settings):
    found = problem(tag, deployed.inventory, deployed_settings)
    assert found is not None and why in found


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("aks.prod1.egress", "egress tags are not turned on"),
        ("aks.prod1.egress.shop.gw", "egress tags are not turned on"),
        ("aks.prod1.ns.payments", "namespace tags are not turned on"),
        ("aks.prod1.tag.pci", "annotation tags are open to no namespace"),
    ],
)
def test_an_opt_in_tag_without_its_option_is_caught(tag, why, deployed):
    # The documented deploy without its opt-ins: the same clusters, none turned on.
    plain = Inventory(
        tuple(
            MonitoredCluster(c.id, c.name, c.tag_name, c.node_resource_group, c.selectors)
            for c in deployed.inventory.clusters
        )
    )
    found = problem(tag, plain, Settings())
    assert found is not None and why in found


def test_the_examples_are_found_in_every_form_a_page_writes_them(tmp_path):
    text = (
        "| `g` | `'aks.prod1.web' or 'aks_public.prod1.api'` |\n"
        "    dag[\"Group<br/>'aks.prod1.svc.tier.frontend'\"]\n"
        "a filter such as `('aks.prod1.web' and not 'aks.prod1.db')`.\n"
        "Properties['cluster'] == 'aksfw.queue.depth'\n"
    )
    found = [m.group(1) for m in DAG_TAG.finditer(text)]
    assert found == [
        "aks.prod1.web",
        "aks_public.prod1.api",
        "aks.prod1.svc.tier.frontend",
        "aks.prod1.web",
        "aks.prod1.db",
    ]
