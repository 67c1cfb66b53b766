"""Label selectors: the Kubernetes string syntax, its matching semantics and its printed form.

The `K8S_*` tables transcribe the case data of Kubernetes' own tests in
k8s.io/apimachinery pkg/labels/selector_test.go (kubernetes/apimachinery, read at commit
eed236ceee2c19c2753a3d93ac0631dc20750454); each names the Go test it comes from. Requirements
are written as (key, operator spelling, values) triples.
"""

import pytest

from aksfw_core.errors import InputError
from aksfw_core.rules.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    _Kind,
    _lex,
    as_label,
    named_selector,
    parse_selector,
)

WEB = {"app": "web", "tier": "frontend", "env": "prod"}
DB = {"app": "db", "tier": "db"}
CANARY = {"app": "web", "canary": ""}
NONE: dict[str, str] = {}


def requirement(key, operator, values=()):
    return Requirement(key, Operator(operator), frozenset(values))


def selector_of(triples):
    requirements = tuple(requirement(*triple) for triple in triples)
    return LabelSelector(",".join(map(str, requirements)), requirements)


# --- Kubernetes' tables ---------------------------------------------------------------------

# TestSelectorParse, testGoodStrings: each parses and prints back without its spaces.
K8S_PRINTS_BACK = [
    "x=a,y=b,z=c",
    "",
    "x!=a,y=b",
    "x=",
    "x= ",
    "x=,z= ",
    "x= ,z= ",
    "!x",
    "x>1",
    "x>1,z<5",
]

# TestSetSelectorParser, the Valid cases: input and the requirements it parses to. Kubernetes
# orders requirements by key; its "x,y in (a)" row lists them unordered and so is not compared
# there (Match false); here it is written in key order.
K8S_PARSES_TO = [
    ("", []),
    ("\rx", [("x", "exists")]),
    (
        "this-is-a-dns.domain.com/key-with-dash",
        [("this-is-a-dns.domain.com/key-with-dash", "exists")],
    ),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        [("this-is-another-dns.domain.com/key-with-dash", "in", ("so", "what"))],
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        [("0.1.2.domain/99", "notin", ("10.10.100.1", "tick.tack.clock"))],
    ),
    ("foo  in\t (abc)", [("foo", "in", ("abc",))]),
    ("x notin\n (abc)", [("x", "notin", ("abc",))]),
    ("x  notin\t\t\t(abc,def)", [("x", "notin", ("abc", "def"))]),
    ("x in (abc,def)", [("x", "in", ("abc", "def"))]),
    ("x in (abc,)", [("x", "in", ("abc", ""))]),
    ("x in (abc,abc)", [("x", "in", ("abc",))]),
    ("x in ()", [("x", "in", ("",))]),
    ("x in (a,,)", [("x", "in", ("a", ""))]),
    ("x in (a,,,)", [("x", "in", ("a", ""))]),
    ("x in (a,,,,,,)", [("x", "in", ("a", ""))]),
    ("x in (a,,a,,a,,a,,)", [("x", "in", ("a", ""))]),
    (
        "x notin (abc,,def),bar,z in (),w",
        [
            ("bar", "exists"),
            ("w", "exists"),
            ("x", "notin", ("abc", "", "def")),
            ("z", "in", ("",)),
        ],
    ),
    ("x,y in (a)", [("x", "exists"), ("y", "in", ("a",))]),
    ("x=a", [("x", "=", ("a",))]),
    ("x>1", [("x", ">", ("1",))]),
    ("x<7", [("x", "<", ("7",))]),
    ("x=a,y!=b", [("x", "=", ("a",)), ("y", "!=", ("b",))]),
    (
        "x=a,y!=b,z in (h,i,j)",
        [("x", "=", ("a",)), ("y", "!=", ("b",)), ("z", "in", ("h", "i", "j"))],
    ),
    ("x notin ( )", [("x", "notin", ("",))]),
    ("x notin (, a)", [("x", "notin", ("", "a"))]),
    ("a ", [("a", "exists")]),
    ("a in (x,y,notin, z,in)", [("a", "in", ("in", "notin", "x", "y", "z"))]),
]

# Inputs Kubernetes refuses, and the part of aksfw's message that names what is wrong.
# From TestSelectorParse (testBadStrings), TestSetSelectorParser (the not Valid cases),
# TestLexerSequence (its two token sequences that are no selector) and TestRequirementConstructor
# (x18, an operator NewRequirement does not support, written as a selector).
K8S_REFUSES = [
    ("x=a||y=b", "'a||y' is not a valid label value"),
    ("x==a==b", "found '=='"),
    ("!x=a", "found '='"),
    ("x<a", "'a' is not a 64-bit integer"),
    ("x,,y", "empty requirement"),
    (",x,y", "empty requirement"),
    ("x nott in (y)", "unsupported operator 'nott'"),
    ("a in (xyz),", "empty requirement"),
    ("a in (xyz)b notin ()", "found 'b'"),
    ("a in (xyz abc)", "found 'abc'"),
    ("a notin(", "unbalanced '('"),
    ("a (", "expected an operator between 'a' and '('"),
    ("(", "found '('"),
    ("()", "found '('"),
    ("== != (), = notin", "found '=='"),
    ("x18 unsupportedOp (a)", "unsupported operator 'unsupportedOp'"),
]

# TestParseOperator: the token after a key, and whether it is an operator.
K8S_OPERATORS = [
    ("x in (1)", None),
    ("x=1", None),
    ("x==1", None),
    ("x>1", None),
    ("x<1", None),
    ("x notin (1)", None),
    ("x!=1", None),
    ("x ! 1", "unsupported operator '!'"),
    ("x exists 1", "unsupported operator 'exists'"),
    ("x ( 1", "expected an operator between 'x' and '('"),
]

# TestSelectorMatches (expectMatch / expectNoMatch) and TestEverything.
K8S_MATCHES = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),  # in and notin as key and value
    ("x", {"x": "z"}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("foo=bar", {"foo": "bar", "baz": "blah"}, True),
    ("baz=blah", {"foo": "bar", "baz": "blah"}, True),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
    ("foo=blah", {"foo": "bar", "baz": "blah"}, False),
    ("baz=bar", {"foo": "bar", "baz": "blah"}, False),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
]

# TestRequirementSelectorMatching: labels, requirements, match. (Its first row, a zero-value
# Requirement, cannot be built here: see K8S_REQUIREMENTS.)
K8S_REQUIREMENTS_MATCH = [
    ({"x": "foo", "y": "baz"}, [("x", "in", ("foo",)), ("y", "notin", ("alpha",))], True),
    ({"x": "foo", "y": "baz"}, [("x", "in", ("foo",)), ("y", "in", ("alpha",))], False),
    ({"y": ""}, [("x", "notin", ("",)), ("y", "exists")], True),
    ({"y": ""}, [("x", "!"), ("y", "exists")], True),
    ({"y": ""}, [("x", "notin", ("",)), ("y", "!")], False),
    ({"y": "baz"}, [("x", "in", ("",))], False),
    ({"z": "2"}, [("z", ">", ("1",))], True),
    ({"z": "v2"}, [("z", ">", ("1",))], False),
]

# TestToString, the Valid cases: requirements and how they print.
K8S_PRINTS = [
    (
        [("x", "in", ("abc", "def")), ("y", "notin", ("jkl",)), ("z", "exists")],
        "x in (abc,def),y notin (jkl),z",
    ),
    (
        [("x", "notin", ("abc", "def")), ("y", "!=", ("jkl",)), ("z", "!")],
        "x notin (abc,def),y!=jkl,!z",
    ),
    (
        [("x", "notin", ("abc",)), ("y", "in", ("jkl", "mno")), ("z", "notin", ("",))],
        "x notin (abc),y in (jkl,mno),z notin ()",
    ),
    (
        [("x", "=", ("abc",)), ("y", "==", ("jkl",)), ("z", "!=", ("a",)), ("z", "exists")],
        "x=abc,y==jkl,z!=a,z",
    ),
    ([("x", ">", ("2",)), ("y", "<", ("8",)), ("z", "exists")], "x>2,y<8,z"),
]

# TestRequirementConstructor: key, operator, values, and the error (None: accepted). Kubernetes
# names the field at fault; aksfw's message says what is wrong with it.
K8S_REQUIREMENTS = [
    ("x1", "in", (), "needs at least one value"),
    ("x2", "notin", (), "needs at least one value"),
    ("x3", "in", ("foo",), None),
    ("x4", "notin", ("foo",), None),
    ("x5", "=", ("foo", "bar"), "takes exactly one value, not 2"),
    ("x6", "exists", (), None),
    ("x7", "!", (), None),
    ("x8", "exists", ("foo",), "takes no values"),
    ("x9", "in", ("bar",), None),
    ("x10", "in", ("bar",), None),
    ("x11", ">", ("1",), None),
    ("x12", "<", ("6",), None),
    ("x13", ">", (), "takes exactly one value, not 0"),
    ("x14", ">", ("bar",), "'bar' is not a 64-bit integer"),
    ("x15", "<", ("bar",), "'bar' is not a 64-bit integer"),
    ("a" * 254, "exists", (), "is not a valid label key"),
    ("x16", "=", ("a" * 254,), "is not a valid label value for 'x16'"),
    ("x17", "=", ("a b",), "'a b' is not a valid label value for 'x17'"),
]

# TestLexer and TestLexerSequence: input and the kinds of its tokens (the end left out).
# Differences by design: `in` and `notin` lex as words, the parser reads them as operators only
# after a key (Kubernetes lexes them as keywords and turns them back into identifiers where a
# value stands), and the Go test's operator tokens are one `operator` kind here.
K8S_LEXES = [
    ("", []),
    (",", [","]),
    ("notin", ["word"]),
    ("in", ["word"]),
    ("=", ["operator"]),
    ("==", ["operator"]),
    (">", ["operator"]),
    ("<", ["operator"]),
    ("!", ["operator"]),
    ("!=", ["operator"]),  # the longest operator, not `!` then `=`
    ("(", ["("]),
    (")", [")"]),
    ("~", ["word"]),  # characters that are not special belong to a word
    ("||", ["word"]),
    ("key in ( value )", ["word", "word", "(", "word", ")"]),
    ("key notin ( value )", ["word", "word", "(", "word", ")"]),
    ("key in ( value1, value2 )", ["word", "word", "(", "word", ",", "word", ")"]),
    ("key", ["word"]),
    ("!key", ["operator", "word"]),
    ("()", ["(", ")"]),
    ("x in (),y", ["word", "word", "(", ")", ",", "word"]),
    ("== != (), = notin", ["operator", "operator", "(", ")", ",", "operator", "word"]),
    ("key>2", ["word", "operator", "word"]),
    ("key<1", ["word", "operator", "word"]),
]


@pytest.mark.parametrize("expression", K8S_PRINTS_BACK)
def test_selector_prints_back_as_kubernetes_does(expression):
    assert str(parse_selector(expression)) == expression.replace(" ", "")


@pytest.mark.parametrize(("expression", "expected"), K8S_PARSES_TO)
def test_selector_parses_to_kubernetes_requirements(expression, expected):
    assert parse_selector(expression).requirements == selector_of(expected).requirements


@pytest.mark.parametrize(("expression", "named"), K8S_REFUSES)
def test_selector_kubernetes_refuses_is_an_error_naming_the_fault(expression, named):
    with pytest.raises(InputError, match="selector") as raised:
        parse_selector(expression)
    assert named in str(raised.value)


@pytest.mark.parametrize(("expression", "named"), K8S_OPERATORS)
def test_only_kubernetes_operators_follow_a_key(expression, named):
    if named is None:
        assert len(parse_selector(expression).requirements) == 1
    else:
        with pytest.raises(InputError, match="selector") as raised:
            parse_selector(expression)
        assert named in str(raised.value)


@pytest.mark.parametrize(("expression", "labels", "expected"), K8S_MATCHES)
def test_selector_matches_as_in_kubernetes_tests(expression, labels, expected):
    assert parse_selector(expression).matches(labels) is expected


@pytest.mark.parametrize(("labels", "triples", "expected"), K8S_REQUIREMENTS_MATCH)
def test_requirements_match_as_in_kubernetes_tests(labels, triples, expected):
    assert selector_of(triples).matches(labels) is expected


@pytest.mark.parametrize(("triples", "printed"), K8S_PRINTS)
def test_requirements_print_as_kubernetes_does_and_parse_back(triples, printed):
    assert str(selector_of(triples)) == printed
    assert str(parse_selector(printed)) == printed


@pytest.mark.parametrize(("key", "operator", "values", "error"), K8S_REQUIREMENTS)
def test_requirement_is_checked_as_kubernetes_checks_it(key, operator, values, error):
    if error is None:
        assert requirement(key, operator, values).key == key
    else:
        with pytest.raises(InputError) as raised:
            requirement(key, operator, values)
        assert error in str(raised.value)


def test_requirement_without_a_key_cannot_be_built():
    # TestToString and TestRequirementSelectorMatching use Go's zero Requirement as the
    # invalid one; here the constructor refuses it.
    with pytest.raises(InputError, match="not a valid label key"):
        requirement("", "exists")


@pytest.mark.parametrize(("text", "kinds"), K8S_LEXES)
def test_lexer_splits_as_kubernetes_lexer(text, kinds):
    tokens = _lex(text)
    assert tokens[-1].kind is _Kind.END
    assert [token.kind.value for token in tokens[:-1]] == kinds


def test_parse_order_does_not_matter():
    # TestDeterministicParse
    assert parse_selector("x=a,a=x").requirements == parse_selector("a=x,x=a").requirements
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a")) == "a=x,x=a"


@pytest.mark.parametrize(
    "expression", [row[0] for row in K8S_PARSES_TO] + K8S_PRINTS_BACK + [p for _, p in K8S_PRINTS]
)
def test_selector_text_and_printed_form_parse_back_to_the_same_selector(expression):
    selector = parse_selector(expression)
    assert parse_selector(selector.text) == selector
    assert parse_selector(str(selector)).requirements == selector.requirements


@pytest.mark.parametrize("match", ["x in ()", "x notin ()", "x notin ( )", "x in (,a),y notin ()"])
def test_empty_set_forms_round_trip_through_the_stored_text(match):
    # The inventory stores `selector.text` and rebuilds the selector from it.
    stored = named_selector("s", match)
    assert named_selector("s", stored.selector.text) == stored
    assert parse_selector(str(stored.selector)).requirements == stored.selector.requirements


# --- aksfw's own cases ----------------------------------------------------------------------


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
        ("canary in ()", CANARY, True),  # () is the set holding only the empty string
        ("canary in ()", WEB, False),
        ("canary notin ()", CANARY, False),
        ("canary notin ()", WEB, True),  # ... and notin also matches without the key
        ("in in (in)", {"in": "in"}, True),  # in is a key or value where one stands
        ("replicas>2", {"replicas": "3"}, True),
        ("replicas>2", {"replicas": "2"}, False),
        ("replicas>2", NONE, False),  # > and < need the key
        ("replicas<2", NONE, False),
        ("replicas>2", {"replicas": "three"}, False),  # ... and an integer value
        ("replicas>6", {"replicas": "007"}, True),
        ("replicas<0", {"replicas": "-1"}, True),  # read as Go's ParseInt reads it
        ("replicas>0", {"replicas": "+1"}, True),
        ("replicas>0", {"replicas": "1_0"}, False),
        ("replicas>0", {"replicas": "9223372036854775808"}, False),  # beyond 64 bits
        ("replicas<9223372036854775807", {"replicas": "9223372036854775806"}, True),
    ],
)
def test_selector_matches_like_kubernetes(expression, labels, expected):
    assert parse_selector(expression).matches(labels) is expected


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("app in (web", "unbalanced '('"),
        ("app in web)", "found 'web'"),
        ("app=web,", "empty requirement after ','"),
        (",app=web", "empty requirement before ','"),
        ("app=web,,tier=db", "empty requirement after ','"),
        ("app=we b", "found 'b'"),
        ("app=web=x", "found '='"),
        ("app)", "unbalanced ')'"),
        ("-app=web", "'-app' is not a valid label key"),
        ("app=-web", "'-web' is not a valid label value"),
        ("a/b/c=web", "more than one '/'"),
        ("Upper.Case/name=x", "prefix"),
        ("x" * 64 + "=v", "longer than 63"),
        ("k=" + "v" * 64, "longer than 63"),
        ("app=<script>", "unsupported operator '=<'"),
        ("replicas>=1", "unsupported operator '>='"),
        ("replicas=>1", "unsupported operator '=>'"),
        ("app~=web", "unsupported operator '~=' after key 'app'"),
        ("app=~web", "unsupported operator '=~'"),
        ("app ~= web", "unsupported operator '~' after key 'app'"),
        ("app:web", "unsupported operator ':' after key 'app'"),
        ("app gt 1", "unsupported operator 'gt' after key 'app'"),
        ("app IN (web)", "unsupported operator 'IN'"),
        ("app in [web]", "found '[web]'"),
        ("!canary=x", "takes no operator or value"),
        ("!", "found the end where a label key was expected"),
        ("replicas>", "'' is not a 64-bit integer"),
        ("replicas>1.5", "'1.5' is not a 64-bit integer"),
        ("replicas>1_0", "'1_0' is not a 64-bit integer"),
        ("replicas<9223372036854775808", "'9223372036854775808' is not a 64-bit integer"),
        ("replicas>-1", "'-1' is not a valid label value"),
        ("app in (a=b)", "found '=' among the values"),
        ("app in (web))", "found ')'"),
        ("app\x00=web", "'app\\x00' is not a valid label key"),
        ("app\v=web", "is not a valid label key"),  # only space, tab, CR and LF are blanks
    ],
)
def test_invalid_selector_is_an_error_naming_the_fault(expression, named):
    with pytest.raises(InputError, match="selector") as raised:
        parse_selector(expression)
    assert named in str(raised.value)


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


@pytest.mark.parametrize(
    ("name", "match", "namespace", "meant"),
    [
        ("tier", "frontend", None, ("frontend", "tier=frontend", None)),
        ("app", "web", None, ("web", "app=web", None)),
        ("c", "k01", None, ("k01", "c=k01", None)),
        ("tier", "frontend", "shop", ("frontend", "tier=frontend", "shop")),
        ("env", "prod.eu", None, ("prod-eu", "env=prod.eu", None)),
        ("canary", "canary", None, ("canary", "canary=canary", None)),
        ("app", "", None, ("app", "app=", None)),  # the empty value is a value
        ("beta", "canary,app=web", None, None),  # more than one requirement
        ("web", "app=web", None, None),
        ("x", "!canary", None, None),
        ("x", "x in (a)", None, None),
        ("x", "example.com/canary", None, None),  # no label value holds '/'
        ("_x", "canary", None, None),  # no label key starts with '_'
    ],
)
def test_the_label_a_selector_spells_is_read_as_the_fix_would_select_it(
    name, match, namespace, meant
):
    # Only a suggestion for when the selector selects nothing while Services carry that
    # label (compute_tags); the selector itself is valid and kept.
    fix = as_label(named_selector(name, match, namespace))
    if meant is None:
        assert fix is None
    else:
        assert fix == named_selector(*meant)
