"""The Kubernetes manifests of docs/distributed.md, checked against the Kubernetes API schema.

kubeconform is not installed here and nothing is downloaded at run time, so the schema is
the `kubernetes` Python client's models (generated from the Kubernetes OpenAPI spec; the
test extra installs it): every field of every manifest must be a field of its model
(`attribute_map`), of the model's type (`openapi_types`: nested models, lists, maps and
primitives), and the client's own deserialiser must accept it (required fields). Then the
manifests must agree with each other and with the command line: the worker Deployment's
replicas equal the master's --workers, the Service selects the master's pod and exposes its
--master-port, the workers reach the Service by name. Each check is shown able to fail on a
broken copy (a misspelt field, a string where a number goes, a missing required name, a
Service that selects nothing).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")
k8s = pytest.importorskip(
    "kubernetes", reason="pip install kubernetes (the test extra) for the schema check"
)
from kubernetes import client as kc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("batch/v1", "Job"): "V1Job",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def manifests() -> list[dict[str, Any]]:
    """The YAML documents of docs/distributed.md's ```yaml blocks."""
    text = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    return [
        d
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
        for d in yaml.safe_load_all(block)
        if d
    ]


def schema_errors(data: Any, type_name: str, path: str) -> list[str]:
    """Every field of `data` not in the model `type_name`, or of the wrong type."""
    if type_name in PRIMITIVES:
        ok = isinstance(data, PRIMITIVES[type_name]) and not (
            type_name != "bool" and isinstance(data, bool)
        )
        return [] if ok else [f"{path}: {data!r} is not {type_name}"]
    if type_name == "object":
        return []
    m = re.fullmatch(r"[Ll]ist\[(.+)\]", type_name)
    if m:
        if not isinstance(data, list):
            return [f"{path}: give a list"]
        return [e for i, x in enumerate(data) for e in schema_errors(x, m.group(1), f"{path}[{i}]")]
    m = re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])", type_name)
    if m:
        if not isinstance(data, dict):
            return [f"{path}: give a map"]
        inner = m.group(1) or m.group(2)
        return [e for k, v in data.items() for e in schema_errors(v, inner, f"{path}.{k}")]
    model = getattr(kc, type_name)
    if not isinstance(data, dict):
        return [f"{path}: give an object ({type_name})"]
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    errors = []
    for key, value in data.items():
        attr = by_key.get(key)
        if attr is None:
            errors.append(f"{path}.{key}: not a field of {type_name}")
        else:
            errors += schema_errors(value, model.openapi_types[attr], f"{path}.{key}")
    return errors


def check(doc: dict[str, Any]) -> list[str]:
    """Schema errors of one manifest (empty = valid), the client's deserialiser included."""
    name = MODELS.get((doc.get("apiVersion"), doc.get("kind")))
    if name is None:
        return [f"unknown kind {doc.get('apiVersion')}/{doc.get('kind')}"]
    errors = schema_errors(doc, name, doc["kind"])
    if not errors:
        try:
            kc.ApiClient()._ApiClient__deserialize(copy.deepcopy(doc), name)
        except (ValueError, TypeError) as e:
            errors.append(f"{doc['kind']}: {e}")
    return errors


def _args(container: dict[str, Any]) -> dict[str, str]:
    a = container["args"]
    return {a[i]: a[i + 1] for i in range(len(a) - 1) if a[i].startswith("--")}


def consistency_errors(docs: list[dict[str, Any]]) -> list[str]:
    """The manifests against each other and against the command line."""
    by_kind = {d["kind"]: d for d in docs}
    job, svc, dep = by_kind["Job"], by_kind["Service"], by_kind["Deployment"]
    master = job["spec"]["template"]["spec"]["containers"][0]
    worker = dep["spec"]["template"]["spec"]["containers"][0]
    ma, wa = _args(master), _args(worker)
    errors = []
    if "--master" not in master["args"] or "--worker" not in worker["args"]:
        errors.append("the Job must run --master and the Deployment --worker")
    if int(ma.get("--workers", 0)) != dep["spec"]["replicas"]:
        errors.append(
            f"Deployment replicas {dep['spec']['replicas']} != master --workers "
            f"{ma.get('--workers')}"
        )
    labels = job["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
        errors.append(
            f"the Service selects {svc['spec']['selector']}, the master pod is labelled {labels}"
        )
    port = int(ma.get("--master-port", 5557))
    if port not in [p["containerPort"] for p in master.get("ports", [])]:
        errors.append(f"the master container does not expose --master-port {port}")
    if port not in [p.get("targetPort") for p in svc["spec"]["ports"]]:
        errors.append(f"the Service does not forward to --master-port {port}")
    if (
        wa.get("--master-host") != svc["metadata"]["name"]
        or int(wa.get("--master-port", 5557)) != port
    ):
        errors.append("the workers must reach the master's Service by name on --master-port")
    if "--allow-remote" not in master["args"]:
        errors.append("a remote --host needs --allow-remote")
    return errors


def test_the_documented_manifests_are_valid_and_agree():
    docs = manifests()
    assert {(d["apiVersion"], d["kind"]) for d in docs} == set(MODELS), (
        "the four manifests of the walk-through"
    )
    for d in docs:
        assert check(d) == [], d["kind"]
    assert consistency_errors(docs) == []


def _broken(kind: str, edit) -> list[dict[str, Any]]:
    docs = copy.deepcopy(manifests())
    edit(next(d for d in docs if d["kind"] == kind))
    return docs


@pytest.mark.parametrize(
    "kind, edit, expect",
    [
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"].__setitem__(
                "contianers", d["spec"]["template"]["spec"].pop("containers")
            ),
            "not a field",
        ),
        ("Deployment", lambda d: d["spec"].__setitem__("replicas", "eight"), "is not int"),
        ("Job", lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "name"),
        ("Service", lambda d: d["spec"]["ports"][0].__setitem__("port", "5557x"), "is not int"),
    ],
)
def test_a_broken_manifest_fails_the_schema(kind, edit, expect):
    doc = next(d for d in _broken(kind, edit) if d["kind"] == kind)
    errors = check(doc)
    assert errors and any(expect in e for e in errors), errors


@pytest.mark.parametrize(
    "kind, edit, expect",
    [
        ("Deployment", lambda d: d["spec"].__setitem__("replicas", 7), "replicas"),
        (
            "Service",
            lambda d: d["spec"].__setitem__("selector", {"app": "surgecast", "role": "worker"}),
            "selects",
        ),
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["args"].__setitem__(
                2, "master"
            ),
            "by name",
        ),
    ],
)
def test_manifests_that_disagree_are_caught(kind, edit, expect):
    errors = consistency_errors(_broken(kind, edit))
    assert any(expect in e for e in errors), errors
