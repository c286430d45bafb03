"""Read a (built) SAM template the way `sam local invoke` does: a function's code, layers and environment.

Intrinsics are resolved as SAM CLI resolves them locally: parameters from their defaults (or overrides),
pseudo parameters from fixed local values, a Ref to a resource as its logical id, conditions evaluated;
what cannot be resolved (GetAtt, imports) becomes "". AWS::NoValue drops the variable, as CloudFormation
does (SAM CLI sets it to "" instead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesearch.errors import ImageSearchError

PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "local",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/local/00000000",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": "",
}
_INTRINSIC_TAGS = (
    "Ref Condition Base64 Cidr FindInMap GetAtt GetAZs ImportValue Join Select Split Sub Transform "
    "And Equals If Not Or"
).split()


class TemplateError(ImageSearchError):
    """The template or the function asked for is not what `imagesearch invoke` can run."""


class _NoValue:
    """AWS::NoValue: the property (here, the variable) is removed."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class FunctionSpec:
    """What a local invocation of one function needs."""

    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    architecture: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int
    events: list[str] = field(default_factory=list)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, YAML (short intrinsic tags included) or JSON."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(tag: str) -> Any:
        name = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

        def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if tag == "GetAtt":
                    value = str(value).split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {name: value}

        return build

    for tag in _INTRINSIC_TAGS:
        Loader.add_constructor(f"!{tag}", construct(tag))
    try:
        template = yaml.load(path.read_text("utf-8"), Loader=Loader)
    except FileNotFoundError:
        raise TemplateError(f"no template at {path}: run `sam build` first (or pass --build-dir)") from None
    if not isinstance(template, dict) or "Resources" not in template:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return template


class Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters and conditions."""

    def __init__(self, template: Mapping[str, Any], parameter_overrides: Mapping[str, str] | None = None):
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = dict(PSEUDO_PARAMETERS)
        for name, spec in (template.get("Parameters") or {}).items():
            value = (parameter_overrides or {}).get(name, spec.get("Default"))
            if value is not None and spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [item.strip() for item in value.split(",")] if value else [""]
            self.parameters[name] = value
        unknown = set(parameter_overrides or {}) - set(template.get("Parameters") or {})
        if unknown:
            raise TemplateError(f"the template has no parameter {', '.join(sorted(unknown))}")
        self._conditions_src: Mapping[str, Any] = template.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._conditions_src:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(self._conditions_src[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic it holds resolved (NO_VALUE where AWS::NoValue was chosen)."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return name  # SAM CLI's local stand-in for a physical id
        raise TemplateError(f"Ref to unknown {name!r}")

    def _function(self, name: str, arg: Any) -> Any:
        if name == "If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Equals":
            left, right = (self.resolve(v) for v in arg)
            return str(left) == str(right) if not isinstance(left, list) else left == right
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(v) for v in arg)
        if name == "Or":
            return any(self.resolve(v) for v in arg)
        if name == "Join":
            separator, items = arg
            return str(separator).join(str(v) for v in self.resolve(items))
        if name == "Split":
            separator, text = arg
            return str(self.resolve(text)).split(separator)
        if name == "Select":
            index, items = arg
            items = self.resolve(items)
            return items[int(self.resolve(index))] if int(self.resolve(index)) < len(items) else ""
        if name == "Sub":
            return self._sub(arg)
        return ""  # GetAtt, ImportValue, FindInMap...: nothing local stands for them

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in resolved:
                return str(resolved[name])
            if "." in name:
                return ""  # ${Resource.Attribute}
            value = self._ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None or isinstance(value, dict):
        return ""
    return str(value)


def find_function(template: Mapping[str, Any], name: str) -> str:
    """The logical id of a function, by logical id or short name (`search` -> SearchFunction)."""
    functions = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    ]
    wanted = name.lower()
    for logical_id in functions:
        if logical_id.lower() in (wanted, f"{wanted}function"):
            return logical_id
    raise TemplateError(f"no function {name!r} in the template (it has {', '.join(sorted(functions))})")


def function_spec(
    template: Mapping[str, Any],
    base_dir: Path,
    name: str,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
) -> FunctionSpec:
    """Code dir, handler, layers and environment of function `name`, Globals merged as SAM merges them."""
    resolver = Resolver(template, parameter_overrides)
    logical_id = find_function(template, name)
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    own = template["Resources"][logical_id].get("Properties") or {}

    def prop(key: str, default: Any = None) -> Any:
        return resolver.resolve(own[key] if key in own else globals_.get(key, default))

    variables: dict[str, Any] = {}
    for source in (globals_, own):  # maps merge, the function's entries win
        variables.update(((source.get("Environment") or {}).get("Variables")) or {})
    environment = {
        key: _stringify(value)
        for key, value in ((k, resolver.resolve(v)) for k, v in variables.items())
        if value is not NO_VALUE
    }
    layers = resolver.resolve(list(globals_.get("Layers") or []) + list(own.get("Layers") or []))
    layer_dirs = []
    for layer in layers:  # SAM prepends the Globals' layers
        resource = template["Resources"].get(layer)
        if resource is None:
            raise TemplateError(
                f"layer {layer!r} is not built by this template (ARN layers are not supported)"
            )
        layer_dirs.append(base_dir / str(resource["Properties"]["ContentUri"]) / "python")
    code_uri = prop("CodeUri")
    if not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id} has no local CodeUri: run `sam build` first")
    architectures = prop("Architectures") or ["x86_64"]
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=base_dir / code_uri,
        handler=str(prop("Handler")),
        runtime=str(prop("Runtime")),
        architecture=str(architectures[0]),
        layer_dirs=layer_dirs,
        environment=environment,
        memory_mb=int(prop("MemorySize", 128)),
        timeout_seconds=int(prop("Timeout", 3)),
        events=sorted((own.get("Events") or {}).keys()),
    )
