"""`namespaceTags` and `annotationTags` in the configuration: top level, overridden per
cluster as `nodeSubnets` is, a cluster found by tag following the top level; errors that
name the field."""

from __future__ import annotations

import pytest

from aksfw_core.config import parse_settings
from aksfw_core.errors import InputError
from aksfw_core.rules.tag_options import TagOptions

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
OTHER = CLUSTER.replace("aks-prod1", "aks-other")


def options(document: dict[str, object], cluster_id: str | None = CLUSTER) -> TagOptions:
    settings = parse_settings(document)
    return settings.tag_options_for(None if cluster_id is None else settings.listed(cluster_id))


@pytest.mark.parametrize(
    ("document", "cluster_id", "expected"),
    [
        ({}, None, TagOptions()),
        ({"clusters": [{"id": CLUSTER}]}, CLUSTER, TagOptions()),
        ({"namespaceTags": True}, None, TagOptions(namespace_tags=True)),
        (
            {"annotationTags": {"namespaces": ["shop", "payments"]}},
            None,
            TagOptions(annotation_namespaces=frozenset({"shop", "payments"})),
        ),
        (
            {"annotationTags": {"namespaces": ["shop", "*"]}},
            None,
            TagOptions(annotation_namespaces=frozenset({"*"})),
        ),
        (
            {"namespaceTags": True, "clusters": [{"id": CLUSTER, "namespaceTags": False}]},
            CLUSTER,
            TagOptions(),
        ),
        (
            {
                "annotationTags": {"namespaces": ["*"]},
                "clusters": [{"id": CLUSTER, "annotationTags": {"namespaces": []}}],
            },
            CLUSTER,
            TagOptions(),
        ),
        (
            {"clusters": [{"id": CLUSTER, "namespaceTags": True,
                           "annotationTags": {"namespaces": ["shop"]}}]},
            CLUSTER.upper(),  # found by its ID in any letter case, as Azure compares them
            TagOptions(True, frozenset({"shop"})),
        ),
        (
            {"namespaceTags": True, "clusters": [{"id": CLUSTER, "annotationTags":
                                                  {"namespaces": ["shop"]}}]},
            CLUSTER,
            TagOptions(True, frozenset({"shop"})),  # what a cluster leaves out is the top's
        ),
        (
            {"namespaceTags": True, "clusters": [{"id": CLUSTER, "namespaceTags": False}]},
            OTHER,  # not listed: found by tag, the top level's
            TagOptions(namespace_tags=True),
        ),
    ],
)  # fmt: skip
def test_a_cluster_s_options_are_its_own_else_the_top_level_ones(document, cluster_id, expected):
    assert options(document, cluster_id) == expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"namespaceTags": "yes"}, "config.namespaceTags: expected true or false"),
        ({"namespaceTag": True}, "config.namespaceTag: unknown field; did you mean namespaceTags?"),
        ({"annotationTags": ["shop"]}, "config.annotationTags: expected an object"),
        ({"annotationTags": {}}, "config.annotationTags.namespaces: required"),
        (
            {"annotationTags": {"namespace": ["shop"]}},
            "config.annotationTags.namespace: unknown field; did you mean namespaces?",
        ),
        (
            {"annotationTags": {"namespaces": "shop"}},
            "config.annotationTags.namespaces: expected a list of namespace names",
        ),
        (
            {"annotationTags": {"namespaces": ["shop", "Payments"]}},
            "config.annotationTags.namespaces[1]: 'Payments' is not a namespace name",
        ),
        (
            {"annotationTags": {"namespaces": [""]}},
            "config.annotationTags.namespaces[0]: expected a non-empty string",
        ),
        (
            {"clusters": [{"id": CLUSTER, "annotationTags": {"namespaces": ["a.b"]}}]},
            "config.clusters[0].annotationTags.namespaces[0]: 'a.b' is not a namespace name",
        ),
        (
            {"clusters": [{"id": CLUSTER, "namespaceTags": 1}]},
            "config.clusters[0].namespaceTags: expected true or false",
        ),
    ],
)
def test_a_bad_option_is_refused_naming_the_field(document, message):
    with pytest.raises(InputError) as refused:
        parse_settings(document)
    assert str(refused.value).startswith(message)
