"""Drive the ml-platform policy pack through the real analyzer protocol, in process, the way the Pulumi engine does.

No Pulumi CLI: the pack's `pulumi_policy.policy._PolicyAnalyzerServicer` (the object `PolicyPack` serves over gRPC)
is called directly with the request messages of `pulumi.runtime.proto.analyzer_pb2`, in the engine's order:

1. `ConfigureStack` (the engine does it when it boots the analyzer plugin);
2. `GetAnalyzerInfo`;
3. config reconciliation, as the engine's `ReconcilePolicyPackConfig` does it: every policy's default enforcement
   level and schema defaults, then the pack's `initialConfig`, then the user's policy config (Pulumi's policy-config
   format, `{"all": level, "<policy>": level | {"enforcementLevel": level, ...props}}`; `"all"` sets every policy's
   level first), validated against each policy's config schema (plus the `enforcementLevel` enum the engine
   injects);
4. `Configure` with the reconciled config, properties as a `Struct` (`structpb.NewStruct`);
5. per resource, `Remediate` then `Analyze` on the (remediated) inputs;
6. `AnalyzeStack` with every resource.

Properties travel as the engine marshals them (`MarshalProperties` with KeepUnknowns, KeepSecrets,
SkipInternalKeys): a protobuf `Struct` built with `Struct.update`, so every number becomes a float and nested maps and
lists become Struct/ListValue; keys starting with `__` are dropped; secrets keep the `4dabf...` signature envelope
(so registrations recorded by `tools.offline`, secrets still wrapped, can be passed as they are). The servicer
decodes them itself (`json_format.MessageToDict` -> `pulumi_policy.deserialize` -> read-only proxies).

Public API: `analyze(resources, policy_config) -> list[Violation]`, `remediate(type, name, props, policy_config)`,
and `AnalyzerSession` to reuse one configured servicer for many calls.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy.policy import _PolicyAnalyzerServicer

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
if str(PACK_DIR) not in sys.path:
    sys.path.append(str(PACK_DIR))

from pack import PACK_ENFORCEMENT, PACK_NAME, build_policies  # noqa: E402 - needs the pack dir on sys.path

# What `PolicyPack` passes to the servicer (the CLI then prefers PulumiPolicy.yaml's version in its output).
PACK_VERSION = "0.0.1"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_ENUM = {name.lower(): value for name, value in analyzer_pb2.EnforcementLevel.items()}
_LEVEL_NAME = {value: name for name, value in _LEVEL_ENUM.items()}

Resource = tuple[str, str, Mapping[str, Any]]  # (Pulumi type, resource name, input properties)


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    enforcement: str  # advisory | mandatory (a failing remediate-level policy reports mandatory)
    urn: str


class PolicyConfigError(ValueError):
    """The engine would refuse to run the pack with this policy config."""


@dataclass
class PolicyConfig:
    enforcement_level: str  # "" when not given
    properties: dict[str, Any] | None


# ---------------------------------------------------------------- property encoding


def wire_value(value: Any) -> Any:
    """A Python value as the engine marshals it for an analyzer (before `Struct` turns numbers into floats)."""
    if rpc.is_rpc_secret(value):
        return {rpc._special_sig_key: rpc._special_secret_sig, "value": wire_value(value["value"])}
    if isinstance(value, Mapping):
        return {str(k): wire_value(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    if value is None or isinstance(value, bool | str | int | float):
        return value
    raise TypeError(f"{type(value).__name__} is not a property value the engine can send: {value!r}")


def encode_properties(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(wire_value(props))
    return struct


def decode_properties(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A `Struct` as plain Python (numbers stay floats, secrets stay wrapped), as the engine unmarshals it."""
    return json_format.MessageToDict(struct)


def default_urn(resource_type: str, name: str, stack: str = "test", project: str = "ml-platform") -> str:
    return f"urn:pulumi:{stack}::{project}::{resource_type}::{name}"


# ---------------------------------------------------------------- config reconciliation


def parse_policy_config(config: Mapping[str, Any] | None) -> dict[str, PolicyConfig]:
    """The engine's `parsePolicyPackConfig`: a level string, or an object with an optional `enforcementLevel`."""
    result: dict[str, PolicyConfig] = {}
    for key, value in (config or {}).items():
        if isinstance(value, str):
            level, properties = value, None
        elif isinstance(value, Mapping):
            props = dict(value)
            level = props.pop("enforcementLevel", "")
            if not isinstance(level, str):
                raise PolicyConfigError(f"parsing enforcement level for {key!r}: {level!r} must be a string")
            properties = props or None
        else:
            raise PolicyConfigError(f"parsing {key!r}: {value!r} is not a valid value; must be a string or object")
        if level and level not in LEVELS:
            raise PolicyConfigError(
                f"parsing enforcement level for {key!r}: {level!r} is not a valid enforcement level"
            )
        if level or properties:
            result[key] = PolicyConfig(level, properties)
    return result


def _apply_config(result: dict[str, PolicyConfig], to_apply: Mapping[str, PolicyConfig]) -> None:
    """The engine's `applyConfig`: `all` first (levels only), then each entry (including `all` itself)."""
    everything = to_apply.get("all")
    if everything is not None and everything.enforcement_level in LEVELS:
        for key, current in result.items():
            result[key] = PolicyConfig(everything.enforcement_level, current.properties)
    for key, given in to_apply.items():
        current = result.get(key, PolicyConfig("", None))
        level = given.enforcement_level if given.enforcement_level in LEVELS else current.enforcement_level
        properties = dict(current.properties) if current.properties is not None else None
        if given.properties:
            properties = {**(properties or {}), **given.properties}
        result[key] = PolicyConfig(level, properties)


def _schema(policy: analyzer_pb2.PolicyInfo) -> dict[str, Any]:
    """The policy's config schema as the engine sees it, `enforcementLevel` injected (the pack supports config)."""
    properties = json_format.MessageToDict(policy.configSchema.properties)
    properties["enforcementLevel"] = {"type": "string", "enum": list(LEVELS)}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if policy.configSchema.required:
        schema["required"] = list(policy.configSchema.required)
    return schema


def reconcile_config(info: analyzer_pb2.AnalyzerInfo, user_config: Mapping[str, Any] | None) -> dict[str, PolicyConfig]:
    """The engine's `ReconcilePolicyPackConfig`: defaults, then initial config, then user config; validated."""
    result: dict[str, PolicyConfig] = {}
    for policy in info.policies:
        schema = json_format.MessageToDict(policy.configSchema.properties)
        defaults = {k: v["default"] for k, v in schema.items() if isinstance(v, dict) and "default" in v}
        result[policy.name] = PolicyConfig(_LEVEL_NAME[policy.enforcementLevel], defaults or None)
    initial = {
        k: PolicyConfig(_LEVEL_NAME[v.enforcementLevel], json_format.MessageToDict(v.properties) or None)
        for k, v in info.initialConfig.items()
    }
    if initial:
        _apply_config(result, initial)
    _apply_config(result, parse_policy_config(user_config))

    errors = []
    for policy in info.policies:
        validator = jsonschema.Draft7Validator(_schema(policy))
        properties = result[policy.name].properties or {}
        for error in validator.iter_errors(properties):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{policy.name}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError("policy pack configuration is invalid:\n" + "\n".join(errors))
    for key, value in result.items():
        if value.enforcement_level not in LEVELS:  # `Configure` refuses an entry without a level
            raise PolicyConfigError(f"invalid enforcement level {value.enforcement_level!r} for {key!r}")
    return result


# ---------------------------------------------------------------- the session


def _options() -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(create=0, update=0, delete=0)
    )


class AnalyzerSession:
    """One policy-pack servicer, booted and configured as the engine does for one `pulumi preview`."""

    def __init__(
        self, policy_config: Mapping[str, Any] | None = None, *, stack: str = "test", project: str = "ml-platform"
    ) -> None:
        self.stack, self.project = stack, project
        self.servicer = _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, build_policies(), PACK_ENFORCEMENT)
        self.servicer.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=project, organization="organization"), None
        )
        self.info: analyzer_pb2.AnalyzerInfo = self.servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)
        self.config = reconcile_config(self.info, policy_config)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for key, value in self.config.items():
            entry = request.policyConfig[key]
            entry.enforcementLevel = _LEVEL_ENUM[value.enforcement_level]
            entry.properties.update(value.properties or {})
        self.servicer.Configure(request, None)

    def urn(self, resource_type: str, name: str) -> str:
        return default_urn(resource_type, name, self.stack, self.project)

    def remediate(
        self, resource_type: str, name: str, props: Mapping[str, Any], urn: str | None = None
    ) -> dict[str, Any] | None:
        """The props after every remediation (the last one's properties), or None when nothing was remediated."""
        request = analyzer_pb2.AnalyzeRequest(
            type=resource_type,
            name=name,
            urn=urn or self.urn(resource_type, name),
            properties=encode_properties(props),
            options=_options(),
        )
        response = self.servicer.Remediate(request, None)
        remediated = [r for r in response.remediations if r.HasField("properties") and not r.diagnostic]
        return decode_properties(remediated[-1].properties) if remediated else None

    def analyze_resource(
        self, resource_type: str, name: str, props: Mapping[str, Any], urn: str | None = None
    ) -> list[Violation]:
        urn = urn or self.urn(resource_type, name)
        request = analyzer_pb2.AnalyzeRequest(
            type=resource_type, name=name, urn=urn, properties=encode_properties(props), options=_options()
        )
        return self._violations(self.servicer.Analyze(request, None), urn)

    def analyze_stack(self, resources: Sequence[tuple[str, str, Mapping[str, Any], str]]) -> list[Violation]:
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=t, name=n, urn=u, properties=encode_properties(p), options=_options()
                )
                for t, n, p, u in resources
            ]
        )
        return self._violations(self.servicer.AnalyzeStack(request, None), "")

    def analyze(self, resources: Iterable[Resource], urns: Sequence[str] | None = None) -> list[Violation]:
        """Remediate + Analyze every resource, then AnalyzeStack with all of them (remediated props)."""
        resources = list(resources)
        urns = list(urns) if urns is not None else [self.urn(t, n) for t, n, _ in resources]
        violations: list[Violation] = []
        analyzed: list[tuple[str, str, Mapping[str, Any], str]] = []
        for (resource_type, name, props), urn in zip(resources, urns, strict=True):
            props = self.remediate(resource_type, name, props, urn) or props
            violations += self.analyze_resource(resource_type, name, props, urn)
            analyzed.append((resource_type, name, props, urn))
        return violations + self.analyze_stack(analyzed)

    @staticmethod
    def _violations(response: analyzer_pb2.AnalyzeResponse, urn: str) -> list[Violation]:
        return [
            Violation(d.policyName, d.message, _LEVEL_NAME[d.enforcementLevel], d.urn or urn)
            for d in response.diagnostics
        ]


def analyze(
    resources: list[tuple[str, str, dict[str, Any]]],
    policy_config: dict[str, Any] | None = None,
    *,
    urns: Sequence[str] | None = None,
) -> list[Violation]:
    """Every violation the pack reports for these resources (type, name, inputs) under this policy config."""
    return AnalyzerSession(policy_config).analyze(resources, urns)


def remediate(
    resource_type: str, name: str, props: dict[str, Any], policy_config: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The inputs after the pack's remediations (only policies at level `remediate` run), or None."""
    return AnalyzerSession(policy_config).remediate(resource_type, name, props)


def mandatory(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if v.enforcement == "mandatory"]


def of_policy(violations: Iterable[Violation], policy: str) -> list[Violation]:
    return [v for v in violations if v.policy == policy]
