"""Reading template.yaml: a YAML loader that understands CloudFormation's short tags, and an
intrinsic-function resolver for the subset the template uses (Ref, GetAtt, Sub, If, Equals,
Join, Select, Split, GetAZs-free)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

TAGS = [
    "Ref",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Join",
    "Select",
    "Split",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "ImportValue",
    "Condition",
    "GetAZs",
    "Cidr",
]


class _Loader(yaml.SafeLoader):
    pass


def _construct(tag: str):  # type: ignore[no-untyped-def]
    key = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def f(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            v: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                v = v.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            v = loader.construct_sequence(node, deep=True)
        else:
            v = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: v}

    return f


for _t in TAGS:
    _Loader.add_constructor(f"!{_t}", _construct(_t))


def load_template(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)


class Resolver:
    """Resolves intrinsics against known parameter values and resource physical ids."""

    def __init__(self, template: dict[str, Any], params: dict[str, str], pseudo: dict[str, str]):
        self.t = template
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update(params)
        self.pseudo = pseudo
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.t.get("Conditions", {})[name]))

    def resolve(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            ((k, a),) = v.items()
            if k == "Ref":
                return self._ref(a)
            if k == "Fn::GetAtt":
                return self.attrs[(a[0], a[1])]
            if k == "Fn::Sub":
                return self._sub(a)
            if k == "Fn::If":
                return self.resolve(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                return str(self.resolve(a[0])) == str(self.resolve(a[1]))
            if k == "Fn::Not":
                return not self.resolve(a[0])
            if k == "Fn::Join":
                return str(a[0]).join(str(x) for x in self.resolve(a[1]))
            if k == "Fn::Select":
                return self.resolve(a[1])[int(a[0])]
            if k == "Fn::Split":
                return str(self.resolve(a[1])).split(a[0])
            if k == "Condition":
                return self.condition(a)
        return {k: self.resolve(x) for k, x in v.items()}

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.refs[name]

    def _sub(self, a: Any) -> str:
        text, extra = (a, {}) if isinstance(a, str) else (a[0], self.resolve(a[1]))

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                res, att = name.split(".", 1)
                return self.attrs[(res, att)]
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", repl, text)
