"""Run the real Pulumi program offline: Pulumi's mock runtime, config from `Pulumi.<stack>.yaml`.

No cloud account and no Pulumi CLI: `RecordingMonitor` keeps every RegisterResource request (type, name,
parent, provider, protect, dependencies, inputs as the program declared them) and `PlanMocks` answers
with the inputs plus readable placeholders for what only the cloud can compute (`<name.arn>`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tools.stack_file import StackFile, StackFileError, read_stack_file

__all__ = ["PROJECT_DIR", "PlanResult", "Registration", "StackFile", "StackFileError", "read_stack_file", "run_stack"]

SECRET_PLACEHOLDER = "[secret]"
PROJECT_DIR = Path(__file__).resolve().parents[1]


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    protect: bool
    ignore_changes: list[str]
    dependencies: list[str]
    inputs: dict[str, Any]  # secrets still wrapped (see rpc.is_rpc_secret)
    retain_on_delete: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent,
            "provider": self.provider,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "ignoreChanges": self.ignore_changes,
            "replaceOnChanges": self.replace_on_changes,
            "deleteBeforeReplace": self.delete_before_replace,
            "dependencies": sorted(self.dependencies),
            "inputs": redact(self.inputs),
        }


def redact(value: Any) -> Any:
    """Secrets never reach the plan files; numbers read as declared (the wire format makes 8 into 8.0). A secret map
    or list keeps its shape (a Secret's stringData stays a map of keys to placeholders), so manifests validate."""
    if rpc.is_rpc_secret(value):
        return _placeholders(rpc.unwrap_rpc_secret(value))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _placeholders(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return _placeholders(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_placeholders(v) for v in value]
    return SECRET_PLACEHOLDER


def unwrap(value: Any) -> Any:
    """Inputs with secrets unwrapped (for tests that need the content)."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, plan_mocks: PlanMocks) -> None:
        super().__init__(plan_mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if any(r.urn == response.urn for r in self.registrations):
            # The real engine rejects two resources with one URN; so must the offline plan.
            raise ValueError(f"duplicate resource URN {response.urn}")
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    provider=request.provider,
                    custom=bool(request.custom),
                    protect=bool(request.protect) if request.HasField("protect") else False,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                    inputs=rpc.deserialize_properties(request.object),
                    retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                )
            )
        return response


def _placeholder(name: str, attr: str) -> str:
    return f"<{name}.{attr}>"


# Outputs only the provider computes, by resource type; everything else echoes the inputs.
def _computed_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    ph = lambda attr: _placeholder(name, attr)  # noqa: E731
    out: dict[str, Any] = {"arn": ph("arn"), "selfLink": ph("selfLink"), "email": ph("email")}
    if "name" not in inputs:
        out["name"] = ph("name")
    if typ == "aws:eks/cluster:Cluster":
        out["endpoint"] = f"https://{ph('endpoint')}"
        out["certificateAuthority"] = {"data": ph("certificateAuthority.data")}
        out["vpcConfig"] = {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": ph("clusterSecurityGroupId")}
        out["identities"] = [{"oidcs": [{"issuer": f"https://{ph('oidcIssuer')}"}]}]
    elif typ == "gcp:container/cluster:Cluster":
        out["endpoint"] = ph("endpoint")
        out["masterAuth"] = {"clusterCaCertificate": ph("masterAuth.clusterCaCertificate")}
    elif typ == "gcp:serviceaccount/account:Account":
        out["email"] = f"{inputs.get('accountId', name)}@<project>.iam.gserviceaccount.com"
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out["latestVersion"] = 1
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        out["resources"] = [{"autoscalingGroups": [{"name": ph("asg")}], "remoteAccessSecurityGroupId": ""}]
    elif typ == "aws:s3/bucket:Bucket" and "bucket" not in inputs:
        out["bucket"] = ph("bucket")  # named by AWS from bucketPrefix
    elif typ == "aws:sqs/queue:Queue":
        out["url"] = ph("url")
    elif typ == "random:index/randomPassword:RandomPassword":
        out["result"] = ph("result")
    elif typ == "random:index/randomId:RandomId":
        out["hex"] = ph("hex")
    return out


class PlanMocks(mocks.Mocks):
    """Answers registrations and invokes the way a cloud would, with readable placeholders."""

    def __init__(self, region: str | None, partition: str = "aws") -> None:
        self.region = region or "<region>"
        self.partition = partition
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith("pulumi:providers:"):
            return f"<{args.name}.provider-id>", dict(args.inputs)
        outputs = {**args.inputs, **_computed_outputs(args.typ, args.name, args.inputs)}
        return _placeholder(args.name, "id"), outputs

    # The monitor accepts a plain dict (no check failures); the SDK's annotation says only tuple.
    def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        a = args.args
        self.invokes.append((args.token, dict(a)))
        match args.token:
            case "aws:index/getAvailabilityZones:getAvailabilityZones":
                zones = [f"{self.region}{s}" for s in "abc"]
                return {"id": self.region, "names": zones, "zoneIds": [f"<zone-id-{z}>" for z in zones]}
            case "aws:index/getPartition:getPartition":
                suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
                return {"id": self.partition, "partition": self.partition, "dnsSuffix": suffix}
            case "aws:ec2/getVpcEndpointService:getVpcEndpointService":
                name = f"com.amazonaws.{self.region}.{a['service']}"
                return {"id": name, "serviceName": name, "serviceType": a.get("serviceType", "Interface")}
            case "aws:ec2/getSubnet:getSubnet":
                # Existing subnets: spread over the region's first AZs by their id, as a real VPC would be.
                zone = f"{self.region}{'abc'[sum(map(ord, a['id'])) % 3]}"
                return {"id": a["id"], "availabilityZone": zone, "vpcId": "<vpc>"}
            case "aws:eks/getClusters:getClusters":
                return {"id": self.region, "names": []}  # a first `pulumi up`
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {"id": "<account-id>", "accountId": "<account-id>", "arn": "<caller-arn>", "userId": "<user-id>"}
            case "aws:eks/getAddonVersion:getAddonVersion":
                version = f"<default {a['addonName']} version for {a['kubernetesVersion']}>"
                return {
                    "id": a["addonName"],
                    "addonName": a["addonName"],
                    "kubernetesVersion": a["kubernetesVersion"],
                    "version": version,
                }
            case "gcp:organizations/getProject:getProject":
                project = a.get("projectId", "<project>")
                return {
                    "id": f"projects/{project}",
                    "projectId": project,
                    "number": "<project-number>",
                    "name": project,
                }
            case "gcp:organizations/getClientConfig:getClientConfig":
                return {"id": "<client>", "project": "<project>", "region": self.region, "accessToken": "<token>"}
        # A forgotten mock must be loud, not a silent None.
        raise NotImplementedError(f"offline plan has no answer for invoke {args.token}; add it to tools/offline.py")


# ---------------------------------------------------------------- stack files


def _region(config: Mapping[str, str], project: str) -> str | None:
    try:
        cluster = json.loads(config.get(f"{project}:cluster", "{}"))
    except json.JSONDecodeError:
        return None
    return cluster.get("region") if isinstance(cluster, dict) else None


# ---------------------------------------------------------------- running


@dataclass
class PlanResult:
    stack: StackFile
    registrations: list[Registration]
    error: str | None = None
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # What the program logged as warnings (the CLI shows them as `warning:` lines).
    warnings: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def named(self, typ: str, name: str) -> Registration:
        matches = [r for r in self.registrations if r.type == typ and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} registrations of {typ} named {name}")
        return matches[0]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _collecting_logger(into: list[str]) -> logging.Logger:
    """The mock engine's logger: the program's warnings into `into`, not onto stderr mid-summary."""
    logger = logging.getLogger("ml-platform.offline")  # one run at a time: its handler is replaced per run
    logger.handlers = [_Collect(into)]
    logger.propagate = False
    return logger


def drain_event_loop() -> None:
    """Cancel what a failed program left running in Pulumi's shared event loop: its pending registrations would
    otherwise land in the next run of this process (tests, the fuzz test)."""
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _run_program(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def run_stack(stack_file: StackFile, program: Path | None = None, partition: str = "aws") -> PlanResult:
    """Run `__main__.py` once under the recording mocks. A RunError (bad config) becomes `error`."""
    from pulumi.errors import RunError

    program = program or PROJECT_DIR / "__main__.py"
    # The Kubernetes provider would otherwise read the developer's real cluster.
    os.environ.pop("KUBECONFIG", None)
    plan_mocks = PlanMocks(_region(stack_file.config, stack_file.project), partition)
    monitor = RecordingMonitor(plan_mocks)
    runtime_settings.ROOT.set(None)
    warnings: list[str] = []
    mocks.set_mocks(
        plan_mocks,
        project=stack_file.project,
        stack=stack_file.stack,
        preview=False,
        logger=_collecting_logger(warnings),
        monitor=monitor,
    )
    runtime_config.set_all_config(dict(stack_file.config), stack_file.secret_keys)

    program_dir = str(program.parent)
    if program_dir not in sys.path:
        sys.path.insert(0, program_dir)
    error: str | None = None
    try:
        _sync_await(run_pulumi_func(lambda: _run_program(program)))
    except RunError as exc:
        error = str(exc)
    finally:
        drain_event_loop()
    return PlanResult(stack_file, monitor.registrations, error, plan_mocks.invokes, warnings)
