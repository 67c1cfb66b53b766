"""The tag rules of DESIGN section 2, one table row per rule."""

import pytest

from aksfw_core.errors import InputError
from aksfw_core.rules.model import Service, WarningKind
from aksfw_core.rules.selectors import named_selector
from aksfw_core.rules.tags import MAX_TAGS_PER_IP, compute_tags, owns, tag_patterns

WEB = Service("shop", "web", {"app": "web", "tier": "frontend"}, ("20.1.1.1",))
API = Service("shop", "api", {"app": "api"}, ("10.0.0.7",))
METRICS = Service("monitoring", "metrics", {"app": "prom"}, ("10.0.0.7",))
PENDING = Service("shop", "pending", {"app": "web"}, ())
DUAL = Service("shop", "dual", {}, ("20.1.1.2", "2001:db8::2"))


@pytest.mark.parametrize(
    ("rule", "services", "selectors", "expected"),
    [
        (
            "service tag and one label tag per label",
            [WEB],
            [],
            {"20.1.1.1": {"aks.c1.web", "aks.c1.svc.app.web", "aks.c1.svc.tier.frontend"}},
        ),
        (
            "a Service without labels gets the service tag only",
            [DUAL],
            [],
            {"20.1.1.2": {"aks.c1.dual"}, "2001:db8::2": {"aks.c1.dual"}},
        ),
        ("a Service without an IP gets nothing", [PENDING], [], {}),
        (
            "selector tag when the selector matches",
            [WEB, API],
            [("front", "tier=frontend", None)],
            {
                "20.1.1.1": {
                    "aks.c1.web",
                    "aks.c1.svc.app.web",
                    "aks.c1.svc.tier.frontend",
                    "aks_front.c1.web",
                },
                "10.0.0.7": {"aks.c1.api", "aks.c1.svc.app.api"},
            },
        ),
        (
            "selector with a namespace only matches there",
            [API, METRICS],
            [("mon", "app", "monitoring")],
            {
                "10.0.0.7": {
                    "aks.c1.api",
                    "aks.c1.svc.app.api",
                    "aks.c1.metrics",
                    "aks.c1.svc.app.prom",
                    "aks_mon.c1.metrics",
                }
            },
        ),
        (
            "Services sharing an IP give it the union of their tags",
            [API, METRICS],
            [],
            {
                "10.0.0.7": {
                    "aks.c1.api",
                    "aks.c1.svc.app.api",
                    "aks.c1.metrics",
                    "aks.c1.svc.app.prom",
                }
            },
        ),
        (
            "selectors on != match Services without the label",
            [DUAL],
            [("nodb", "tier!=db", None)],
            {
                "20.1.1.2": {"aks.c1.dual", "aks_nodb.c1.dual"},
                "2001:db8::2": {"aks.c1.dual", "aks_nodb.c1.dual"},
            },
        ),
    ],
)
def test_tag_rules(rule, services, selectors, expected):
    named = [named_selector(n, m, ns) for n, m, ns in selectors]
    result = compute_tags("c1", services, named)
    assert {ip: set(tags) for ip, tags in result.tags.items()} == expected, rule
    assert result.warnings == ()


def test_tag_of_127_characters_is_kept_and_128_dropped_with_a_warning():
    prefix = len("aks.c1.svc.k.")
    keep = Service("ns", "s", {"k": "v" * (127 - prefix)}, ("1.1.1.1",))
    drop = Service("ns", "t", {"k": "w" * (128 - prefix)}, ("1.1.1.2",))
    result = compute_tags("c1", [keep, drop])
    assert f"aks.c1.svc.k.{'v' * (127 - prefix)}" in result.tags["1.1.1.1"]
    assert result.tags["1.1.1.2"] == {"aks.c1.t"}
    assert [w.kind for w in result.warnings] == [WarningKind.TAG_TOO_LONG]


@pytest.mark.parametrize(
    "bad",
    ['say"hi', "{x}", "<b>", "a&b", "it's", "a b", "tab\there", "nul\x00", "ünïcode", "del\x7f"],
)
def test_tag_with_a_forbidden_character_is_dropped_with_a_warning(bad):
    result = compute_tags("c1", [Service("ns", "s", {"k": bad}, ("1.1.1.1",))])
    assert result.tags == {"1.1.1.1": {"aks.c1.s"}}
    assert [w.kind for w in result.warnings] == [WarningKind.TAG_INVALID]


def test_allowed_punctuation_is_kept():
    labels = {"app.kubernetes.io/name": "web_1-x", "k": "a:b=c|d~e!f#g$h%i(j)*+,;?@[\\]^`"}
    result = compute_tags("c1", [Service("ns", "s", labels, ("1.1.1.1",))])
    assert len(result.tags["1.1.1.1"]) == 3
    assert result.warnings == ()


def test_more_than_32_tags_keep_service_then_selector_then_label_tags():
    labels = {f"l{i:02}": "v" for i in range(40)}
    services = [Service("ns", f"s{i}", labels, ("1.1.1.1",)) for i in range(2)]
    selectors = [named_selector("zsel", "l00"), named_selector("asel", "l01")]
    result = compute_tags("c1", services, selectors)
    kept = result.tags["1.1.1.1"]
    assert len(kept) == MAX_TAGS_PER_IP
    service_tags = {"aks.c1.s0", "aks.c1.s1"}
    selector_tags = {"aks_asel.c1.s0", "aks_asel.c1.s1", "aks_zsel.c1.s0", "aks_zsel.c1.s1"}
    label_tags = {f"aks.c1.svc.l{i:02}.v" for i in range(26)}  # the first 26 in sorted order
    assert kept == service_tags | selector_tags | label_tags
    (warning,) = result.warnings
    assert warning.kind is WarningKind.TAG_LIMIT
    assert "aks.c1.svc.l26.v" in warning.message and "aks.c1.svc.l39.v" in warning.message


def test_same_service_name_in_two_namespaces_shares_the_tag_and_warns():
    a = Service("team-a", "web", {}, ("1.1.1.1",))
    b = Service("team-b", "web", {}, ("1.1.1.2",))
    result = compute_tags("c1", [a, b])
    assert result.tags == {"1.1.1.1": {"aks.c1.web"}, "1.1.1.2": {"aks.c1.web"}}
    (warning,) = result.warnings
    assert warning.kind is WarningKind.DUPLICATE_SERVICE_NAME
    assert "team-a, team-b" in warning.message


@pytest.mark.parametrize("name", ["", "a.b", "has space", "x" * 64, "ünï"])
def test_cluster_name_that_cannot_stand_in_a_tag_is_rejected(name):
    with pytest.raises(InputError, match="cluster name"):
        compute_tags(name, [WEB])


@pytest.mark.parametrize(
    ("tag", "owned"),
    [
        ("aks.c1.web", True),
        ("aks.c1.svc.app.web", True),
        ("aks_front.c1.web", True),
        ("aks_old-selector.c1.web", True),  # selectors removed from config are still ours
        ("aks.c10.web", False),  # another cluster whose name starts the same
        ("aks.c1", False),
        ("aks_front.c10.web", False),
        ("aks.C1.web", False),  # tags are case-sensitive
        ("xaks.c1.web", False),
        ("aks_.c1.web", False),
        ("aks_a.b.c1.web", False),
        ("mytag", False),
        ("aks.other.c1.web", False),
    ],
)
def test_ownership(tag, owned):
    assert owns("c1", tag) is owned


def test_computed_tags_are_all_owned_by_their_cluster():
    selectors = [named_selector("front", "app")]
    result = compute_tags("c1", [WEB, API, METRICS, DUAL], selectors)
    assert all(owns("c1", tag) for tags in result.tags.values() for tag in tags)


@pytest.mark.parametrize(
    ("selector", "services", "why"),
    [
        (
            named_selector("web", "app=web", "payments"),
            [WEB, API],
            "there is no LoadBalancer Service in namespace payments",
        ),
        (
            named_selector("front", "tier=front", "shop"),
            [WEB, API, METRICS],
            "the expression matches none of the 2 LoadBalancer Services in namespace shop",
        ),
        (
            named_selector("front", "tier=front"),
            [WEB],
            "the expression matches none of the 1 LoadBalancer Service",
        ),
        (named_selector("any", "app"), [], "there is no LoadBalancer Service"),
        (  # `tier=frontend` written for the label: kept, and the fix is said
            named_selector("tier", "frontend"),
            [WEB, API, METRICS],
            "the expression matches none of the 3 LoadBalancer Services; 1 of them carries "
            "the label tier=frontend: did you mean the expression tier=frontend "
            "(--selector frontend=tier=frontend)?",
        ),
        (  # a Service without an IP yet is evidence too
            named_selector("app", "web", "shop"),
            [PENDING, WEB, API],
            "the expression matches none of the 3 LoadBalancer Services in namespace shop; "
            "2 of them carry the label app=web: did you mean the expression app=web "
            "(--selector web=app=web@shop)?",
        ),
        (  # the label is carried, but not in the selector's namespace: no fix offered
            named_selector("app", "prom", "shop"),
            [WEB, METRICS],
            "the expression matches none of the 1 LoadBalancer Service in namespace shop",
        ),
    ],
)
def test_a_selector_that_selects_no_service_warns_why(selector, services, why):
    result = compute_tags("c1", services, [selector])
    (warning,) = result.warnings
    assert warning.kind is WarningKind.SELECTOR_UNMATCHED
    assert warning.selector == selector.name
    assert warning.message.endswith(f"selects no Service: {why}")
    assert f"selector {selector.name!r}" in warning.message


def test_a_selector_that_selects_only_a_pending_service_does_not_warn():
    pending_only = named_selector("p", "app=web", "shop")
    assert compute_tags("c1", [PENDING, METRICS], [pending_only]).warnings == ()
    matched = named_selector("prom", "app=prom")
    assert compute_tags("c1", [WEB, METRICS], [matched, pending_only]).warnings == ()


@pytest.mark.parametrize(
    ("cluster", "selectors", "node_subnets", "patterns"),
    [
        ("prod1", [], False, ["aks.prod1.<service>", "aks.prod1.svc.<label>.<value>"]),
        (
            "prod1",
            ["web", "shop-front"],
            True,
            [
                "aks.prod1.<service>",
                "aks.prod1.svc.<label>.<value>",
                "aks_web.prod1.<service>",
                "aks_shop-front.prod1.<service>",
                "aks.prod1.node_subnet",
            ],
        ),
        (
            "<name>",
            [],
            True,
            ["aks.<name>.<service>", "aks.<name>.svc.<label>.<value>", "aks.<name>.node_subnet"],
        ),
    ],
)
def test_tag_patterns_spell_the_tags_compute_tags_gives(cluster, selectors, node_subnets, patterns):
    assert tag_patterns(cluster, selectors, node_subnets) == patterns


def test_a_services_tags_are_its_patterns_filled_in():
    web = named_selector("web", "app=web")
    tags = compute_tags("prod1", [WEB], [web]).tags["20.1.1.1"]
    service, label, selector = tag_patterns("prod1", ["web"])
    assert tags == {
        service.replace("<service>", "web"),
        label.replace("<label>", "app").replace("<value>", "web"),
        label.replace("<label>", "tier").replace("<value>", "frontend"),
        selector.replace("<service>", "web"),
    }
