"""The opt-in tags of DESIGN section 11 through the one tag rule: namespace tags, the tags a
Service's `aksfw.io/tags` annotation adds where the cluster opens its namespace, and
`aksfw.io/ignore`; under the same length, 32-per-IP and ownership rules as Service tags."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aksfw_core.errors import InputError
from aksfw_core.rules.annotations import IGNORE, TAGS
from aksfw_core.rules.model import Service, WarningKind
from aksfw_core.rules.plan import plan_changes
from aksfw_core.rules.selectors import named_selector
from aksfw_core.rules.tag_options import (
    ALL_NAMESPACES,
    TagOptions,
    annotation_namespaces,
    check_namespace,
)
from aksfw_core.rules.tags import (
    MAX_TAG_LENGTH,
    MAX_TAGS_PER_IP,
    annotation_tag,
    compute_tags,
    namespace_tag,
    ownership,
    owns,
    registrable,
    tag_patterns,
)

IP = "20.1.1.1"
SHOP = TagOptions(annotation_namespaces=frozenset({"shop"}))
EVERYWHERE = TagOptions(annotation_namespaces=frozenset({ALL_NAMESPACES}))
NAMESPACES = TagOptions(namespace_tags=True)


def svc(name="web", namespace="shop", labels=None, ips=(IP,), **annotations: str) -> Service:
    return Service(namespace, name, labels or {}, tuple(ips), annotations)


def tags_of(services, options=None, selectors=()) -> dict[str, set[str]]:
    result = compute_tags("c1", services, selectors, options)
    return {ip: set(tags) for ip, tags in result.tags.items()}


def kinds(services, options=None) -> list[WarningKind]:
    return [w.kind for w in compute_tags("c1", services, (), options).warnings]


@pytest.mark.parametrize(
    ("rule", "services", "options", "expected"),
    [
        ("off by default: no namespace tag", [svc()], None, {IP: {"aks.c1.web"}}),
        (
            "namespaceTags: the Service's namespace",
            [svc()],
            NAMESPACES,
            {IP: {"aks.c1.web", "aks.c1.ns.shop"}},
        ),
        (
            "Services sharing an IP: the union of their namespaces",
            [svc(), svc("api", "payments")],
            NAMESPACES,
            {IP: {"aks.c1.web", "aks.c1.api", "aks.c1.ns.shop", "aks.c1.ns.payments"}},
        ),
        (
            "annotation tags in an open namespace",
            [svc(**{TAGS: "pci, tier1"})],
            SHOP,
            {IP: {"aks.c1.web", "aks.c1.tag.pci", "aks.c1.tag.tier1"}},
        ),
        (
            "commas and whitespace both separate; repeats count once",
            [svc(**{TAGS: " pci,,tier1\n pci\ttier-2_b "})],
            SHOP,
            {IP: {"aks.c1.web", "aks.c1.tag.pci", "aks.c1.tag.tier1", "aks.c1.tag.tier-2_b"}},
        ),
        (
            "'*' opens every namespace",
            [svc(namespace="anything", **{TAGS: "pci"})],
            EVERYWHERE,
            {IP: {"aks.c1.web", "aks.c1.tag.pci"}},
        ),
        (
            "the letter case of a value is kept",
            [svc(**{TAGS: "PCI"})],
            SHOP,
            {IP: {"aks.c1.web", "aks.c1.tag.PCI"}},
        ),
        ("an empty annotation adds nothing", [svc(**{TAGS: " , "})], SHOP, {IP: {"aks.c1.web"}}),
        ("ignore: no tag at all", [svc(**{IGNORE: "true", TAGS: "pci"})], SHOP, {}),
        ("ignore in any letter case", [svc(**{IGNORE: " TRUE "})], NAMESPACES, {}),
        ("ignore false: tagged", [svc(**{IGNORE: "False"})], None, {IP: {"aks.c1.web"}}),
        (
            "an ignored Service leaves a shared IP to the others",
            [svc(**{IGNORE: "true"}), svc("api", labels={"app": "api"})],
            NAMESPACES,
            {IP: {"aks.c1.api", "aks.c1.svc.app.api", "aks.c1.ns.shop"}},
        ),
    ],
)
def test_opt_in_tag_rules(rule, services, options, expected):
    result = compute_tags("c1", services, (), options)
    assert {ip: set(tags) for ip, tags in result.tags.items()} == expected, rule
    assert result.warnings == (), rule


def test_an_annotation_in_a_namespace_not_opened_adds_nothing_and_names_the_service():
    for options in (None, SHOP):
        result = compute_tags("c1", [svc(namespace="dev", **{TAGS: "pci"})], (), options)
        assert result.tags == {IP: {"aks.c1.web"}}
        (warning,) = result.warnings
        assert warning.kind is WarningKind.ANNOTATION_NOT_ALLOWED
        assert "Service dev/web" in warning.message
        assert "namespace dev" in warning.message
    assert "open to namespace shop only" in warning.message


@pytest.mark.parametrize(
    "value",
    ["bad.value", "a/b", "x=y", "über", "quote'", "<b>", "a" * (MAX_TAG_LENGTH - 10 + 1)],
)
def test_a_value_that_is_not_a_tag_is_skipped_with_a_warning_naming_the_service(value):
    result = compute_tags("c1", [svc(**{TAGS: f"pci {value}"})], (), SHOP)
    assert result.tags == {IP: {"aks.c1.web", "aks.c1.tag.pci"}}
    (warning,) = result.warnings
    assert warning.kind is WarningKind.ANNOTATION_INVALID
    assert "Service shop/web" in warning.message


def test_an_annotation_tag_of_127_characters_is_kept():
    value = "v" * (MAX_TAG_LENGTH - len("aks.c1.tag."))
    assert tags_of([svc(**{TAGS: value})], SHOP)[IP] == {"aks.c1.web", f"aks.c1.tag.{value}"}


def test_a_namespace_tag_over_127_characters_is_dropped_as_any_tag_is():
    alias = "a" * 63
    result = compute_tags(alias, [svc(namespace="n" * 63)], (), NAMESPACES)
    assert result.tags == {IP: {f"aks.{alias}.web"}}
    assert [w.kind for w in result.warnings] == [WarningKind.TAG_TOO_LONG]


@pytest.mark.parametrize("value", ["yes", "1", "ignore", ""])
def test_an_ignore_value_other_than_true_or_false_tags_the_service_and_warns(value):
    result = compute_tags("c1", [svc(**{IGNORE: value})])
    assert result.tags == {IP: {"aks.c1.web"}}
    (warning,) = result.warnings
    assert warning.kind is WarningKind.ANNOTATION_INVALID
    assert "Service shop/web" in warning.message and IGNORE in warning.message


def test_an_ignored_service_counts_for_no_warning():
    twins = [svc(), svc(namespace="other", ips=("20.1.1.2",), **{IGNORE: "true"})]
    assert kinds(twins) == []  # not a duplicate name any more
    selector = named_selector("legacy", "app=old")
    result = compute_tags("c1", [svc(labels={"app": "old"}, **{IGNORE: "true"})], [selector])
    assert result.tags == {}
    assert [w.kind for w in result.warnings] == [WarningKind.SELECTOR_UNMATCHED]


def test_ignoring_a_service_unregisters_its_tags_and_only_those():
    registered = {IP: frozenset({"aks.c1.web", "aks.c1.ns.shop", "aks.c1.tag.pci", "corp.x"})}
    wanted = compute_tags("c1", [svc(**{IGNORE: "true"})], (), NAMESPACES).tags
    plan = plan_changes(wanted, registered, ownership("c1"))
    assert plan.unregister == {IP: frozenset({"aks.c1.web", "aks.c1.ns.shop", "aks.c1.tag.pci"})}
    assert plan.register == {}


def test_past_32_tags_service_selector_namespace_annotation_then_label_tags_are_kept():
    labels = {f"l{i:02}": "v" for i in range(40)}
    annotation = " ".join(f"a{i:02}" for i in range(20))
    selectors = [named_selector(f"s{i}", "") for i in range(5)]
    service = svc(labels=labels, **{TAGS: annotation})
    options = TagOptions(True, frozenset({"shop"}))
    result = compute_tags("c1", [service], selectors, options)
    kept = result.tags[IP]
    assert len(kept) == MAX_TAGS_PER_IP
    assert {"aks.c1.web", "aks.c1.ns.shop"} <= kept
    assert {f"aks_s{i}.c1.web" for i in range(5)} <= kept
    assert {f"aks.c1.tag.a{i:02}" for i in range(20)} <= kept
    assert sum(tag.startswith("aks.c1.svc.") for tag in kept) == 32 - 1 - 5 - 1 - 20
    assert [w.kind for w in result.warnings] == [WarningKind.TAG_LIMIT]


def test_no_service_name_can_spell_a_namespace_annotation_or_label_tag():
    # The API server refuses such names (not DNS-1035 labels); a forged object is data.
    forged = [svc("ns.prod"), svc("tag.pci", ips=("20.1.1.2",)), svc("svc.k.v", ips=("20.1.1.3",))]
    result = compute_tags("c1", forged)
    assert result.tags == {}
    assert [w.kind for w in result.warnings] == [WarningKind.TAG_INVALID] * 3
    assert "Service shop/ns.prod" in result.warnings[0].message


def test_the_families_are_told_apart_by_their_second_word():
    assert namespace_tag("c1", "shop") == "aks.c1.ns.shop"
    assert annotation_tag("c1", "pci") == "aks.c1.tag.pci"
    # A Service named `ns` or `tag` tags as one segment: none of the above.
    assert tags_of([svc("ns"), svc("tag", ips=("20.1.1.2",))], NAMESPACES) == {
        IP: {"aks.c1.ns", "aks.c1.ns.shop"},
        "20.1.1.2": {"aks.c1.tag", "aks.c1.ns.shop"},
    }


def test_the_new_tags_are_owned_by_their_cluster_only():
    for tag in ("aks.c1.ns.shop", "aks.c1.tag.pci"):
        assert owns("c1", tag)
        assert not owns("c2", tag)
        assert not owns("c", tag)


def test_patterns_name_the_opt_in_tags_in_order():
    options = TagOptions(True, frozenset({"shop"}))
    assert tag_patterns("c1", ["pub"], True, options) == [
        "aks.c1.<service>",
        "aks.c1.svc.<label>.<value>",
        "aks_pub.c1.<service>",
        "aks.c1.ns.<namespace>",
        "aks.c1.tag.<tag>",
        "aks.c1.node_subnet",
    ]
    assert tag_patterns("c1") == ["aks.c1.<service>", "aks.c1.svc.<label>.<value>"]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], frozenset()),
        (["shop", "shop", "kube-system"], frozenset({"shop", "kube-system"})),
        (["*"], frozenset({"*"})),
        (["shop", "*"], frozenset({"*"})),
    ],
)
def test_annotation_namespaces(names, expected):
    assert annotation_namespaces(names) == expected


@pytest.mark.parametrize("bad", ["Shop", "shop.prod", "-shop", "a" * 64, "**", "", "sh op"])
def test_a_namespace_must_be_a_dns_1123_label_or_a_star(bad):
    with pytest.raises(InputError, match="namespace name"):
        check_namespace(bad)


def test_the_scope_of_annotation_tags_reads_for_a_person():
    assert TagOptions().annotation_scope() == "no namespace"
    assert EVERYWHERE.annotation_scope() == "every namespace"
    assert TagOptions(annotation_namespaces=frozenset({"b", "a"})).annotation_scope() == (
        "namespaces a, b"
    )


_NAMESPACE = st.sampled_from(["shop", "dev", "pay"])
_ANNOTATION = st.lists(st.sampled_from([*"aZ9_-., \t/ü'\"<&", "pci", "x" * 120]), max_size=12).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["web", "api", "db"]),
            _NAMESPACE,
            st.dictionaries(st.sampled_from([IGNORE, TAGS]), _ANNOTATION | st.just("true")),
        ),
        max_size=6,
    ),
    st.booleans(),
    st.frozensets(_NAMESPACE | st.just("*")),
)
def test_only_open_namespaces_get_annotation_tags_and_every_tag_is_registrable_and_owned(
    specs, namespace_tags, opened
):
    options = TagOptions(namespace_tags, annotation_namespaces(opened))
    services = [svc(name, namespace, **annotations) for name, namespace, annotations in specs]
    result = compute_tags("c1", services, (), options)
    for tags in result.tags.values():
        assert len(tags) <= MAX_TAGS_PER_IP
        for tag in tags:
            assert registrable(tag) and owns("c1", tag)
    annotated = set().union(*result.tags.values()) if result.tags else set()
    for tag in annotated:
        if tag.startswith("aks.c1.tag."):
            value = tag.removeprefix("aks.c1.tag.")
            assert any(
                options.allows_annotation_tags(s.namespace)
                and s.annotations.get(IGNORE, "").strip().lower() != "true"
                and value in s.annotations.get(TAGS, "")
                for s in services
            ), tag
