"""Label selectors: the Kubernetes string syntax and its matching semantics."""

import pytest

from aksfw_core.errors import InputError
from aksfw_core.selectors import named_selector, parse_selector

WEB = {"app": "web", "tier": "frontend", "env": "prod"}
DB = {"app": "db", "tier": "db"}
CANARY = {"app": "web", "canary": ""}
NONE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=web", DB, False),
        ("app=web", NONE, False),
        ("tier!=db", WEB, True),
        ("tier!=db", DB, False),
        ("tier!=db", NONE, True),  # != matches Services without the key
        ("env in (prod,stage)", WEB, True),
        ("env in (stage, dev)", WEB, False),
        ("env in (prod)", NONE, False),
        ("tier notin (db)", WEB, True),
        ("tier notin (db)", DB, False),
        ("tier notin (db)", NONE, True),  # notin matches Services without the key
        ("canary", CANARY, True),
        ("canary", WEB, False),
        ("!canary", WEB, True),
        ("!canary", CANARY, False),
        ("app=web,tier=frontend", WEB, True),
        ("app=web,tier=frontend", CANARY, False),
        ("app=web, env in (prod, stage), !canary", WEB, True),
        ("  app = web  ", WEB, True),
        ("canary=", CANARY, True),  # empty value is a value
        ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
        ("", WEB, True),  # the empty selector selects everything, as in Kubernetes
        ("", NONE, True),
    ],
)
def test_selector_matches_like_kubernetes(expression, labels, expected):
    assert parse_selector(expression).matches(labels) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "app in ()",
        "app notin ( )",
        "app in (web",
        "app in web)",
        "app=web,",
        ",app=web",
        "app=web,,tier=db",
        "app=we b",
        "app=web=x",
        "-app=web",
        "app=-web",
        "app>1",
        "a/b/c=web",
        "Upper.Case/name=x",
        "x" * 64 + "=v",
        "k=" + "v" * 64,
        "app=<script>",
    ],
)
def test_invalid_selector_is_a_clear_error(expression):
    with pytest.raises(InputError, match="selector"):
        parse_selector(expression)


@pytest.mark.parametrize(
    ("name", "namespace", "service_namespace", "expected"),
    [
        ("web", None, "shop", True),
        ("web", "shop", "shop", True),
        ("web", "shop", "other", False),
    ],
)
def test_named_selector_namespace_restriction(name, namespace, service_namespace, expected):
    selector = named_selector(name, "app=web", namespace)
    assert selector.matches(service_namespace, WEB) is expected


@pytest.mark.parametrize("name", ["", "a" * 32, "has.dot", "has space", "ünï"])
def test_selector_name_outside_allowed_set_is_rejected(name):
    with pytest.raises(InputError, match="selector name"):
        named_selector(name, "app=web")


def test_selector_name_at_the_limits_is_accepted():
    assert named_selector("a" * 31, "app=web").name == "a" * 31
    assert named_selector("A-z_0", "app=web").name == "A-z_0"


def test_invalid_namespace_is_rejected():
    with pytest.raises(InputError, match="namespace"):
        named_selector("web", "app=web", "Bad_Namespace")
