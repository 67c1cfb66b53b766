"""Reading aksfw's two annotations from Service objects: kept on the `Service` (and only
they), bounded, refused alike whether a list kept the whole object or its tag fields."""

from __future__ import annotations

import pytest

from aksfw_core.errors import InputError
from aksfw_core.rules.annotations import IGNORE, MAX_VALUE_LENGTH, TAGS
from aksfw_core.rules.model import WarningKind
from aksfw_core.rules.services import parse_service_items, tag_fields
from aksfw_local.fakes.kube_api import service


def annotated(annotations, type="LoadBalancer"):
    return service("web", "shop", type, ips=["20.0.0.1"], annotations=annotations)


def test_a_service_keeps_aksfw_s_two_annotations_and_no_other():
    item = annotated(
        {IGNORE: "false", TAGS: "pci", "aksfw.io/other": "x", "example.com/owner": "team-a"}
    )
    (parsed,) = parse_service_items([item]).services
    assert parsed.annotations == {IGNORE: "false", TAGS: "pci"}


def test_a_service_without_annotations_has_none():
    (parsed,) = parse_service_items([annotated(None)]).services
    assert parsed.annotations == {}


def test_a_value_longer_than_the_cap_is_ignored_with_a_warning_naming_the_service():
    item = annotated({TAGS: "a" * (MAX_VALUE_LENGTH + 1), IGNORE: "t" * MAX_VALUE_LENGTH})
    listed = parse_service_items([item])
    assert listed.services[0].annotations == {IGNORE: "t" * MAX_VALUE_LENGTH}
    (warning,) = listed.warnings
    assert warning.kind is WarningKind.ANNOTATION_INVALID
    assert "service shop/web" in warning.message and TAGS in warning.message


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ("not a map", "annotations is not an object"),
        ({TAGS: 7}, "annotation aksfw.io/tags is not a string"),
        ({IGNORE: True}, "annotation aksfw.io/ignore is not a string"),
    ],
)
def test_a_malformed_annotation_of_aksfw_s_is_refused_alike_whole_or_reduced(annotations, reason):
    item = annotated({})
    item["metadata"]["annotations"] = annotations
    for form in (item, tag_fields(item)):
        with pytest.raises(InputError, match=reason):
            parse_service_items([form])


def test_other_annotations_of_any_shape_are_not_read():
    item = annotated({"example.com/n": 7, TAGS: "pci"})  # not a string, but not aksfw's
    (parsed,) = parse_service_items([item]).services
    assert parsed.annotations == {TAGS: "pci"}


def test_a_service_that_is_not_a_loadbalancer_is_not_read_at_all():
    item = annotated({TAGS: 7}, type="ClusterIP")
    assert parse_service_items([item]).services == ()
