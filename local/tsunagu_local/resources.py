"""Create the template's stateful resources (tables, GSIs, TTL, queues with their DLQs and
redrive policies, secrets) on any AWS endpoint: moto server for the local stack, moto's
``mock_aws`` for integration tests. The schema lives only in template.yaml."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tsunagu_local.cfn import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, str]
    http_routes: list[tuple[str, str]] = field(default_factory=list)  # (METHOD, /path/{param})
    sqs_sources: list[dict[str, Any]] = field(default_factory=list)  # resolved SQS event props
    schedules: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stack:
    name: str
    resolver: Resolver
    functions: dict[str, FunctionSpec]
    queue_urls: dict[str, str]  # logical id -> url
    tables: dict[str, str]  # logical id -> name


def _create_table(ddb: Any, name: str, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ddb.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attrs = {}
    for k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if k in props:
            attrs[k] = str(props[k])
    if "RedrivePolicy" in props:
        attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attrs


def create_resources(
    stack_name: str = "tsunagu-local",
    params: dict[str, str] | None = None,
    session: boto3.session.Session | None = None,
    template_path: Path = TEMPLATE,
) -> Stack:
    """Create every table, queue and secret of the template; return what functions need."""
    t = load_template(template_path)
    session = session or boto3.session.Session(region_name=REGION)
    pseudo = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }
    r = Resolver(t, params or {}, pseudo)
    ddb, sqs, sm = session.client("dynamodb"), session.client("sqs"), session.client("secretsmanager")
    resources: dict[str, Any] = t["Resources"]
    tables: dict[str, str] = {}
    queue_urls: dict[str, str] = {}

    # Queues without a redrive policy (the DLQs) first, so redrive targets exist.
    queues = [(lid, res) for lid, res in resources.items() if res["Type"] == "AWS::SQS::Queue"]
    queues.sort(key=lambda q: "RedrivePolicy" in q[1].get("Properties", {}))
    for lid, res in queues:
        name = f"{stack_name}-{lid}"
        url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(r.resolve(res.get("Properties", {}))))[
            "QueueUrl"
        ]
        r.refs[lid] = url
        r.attrs[(lid, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        r.attrs[(lid, "QueueName")] = name
        queue_urls[lid] = url

    for lid, res in resources.items():
        typ, props = res["Type"], res.get("Properties", {})
        if typ == "AWS::DynamoDB::Table":
            name = f"{stack_name}-{lid}"
            _create_table(ddb, name, r.resolve(props))
            r.refs[lid] = name
            r.attrs[(lid, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            tables[lid] = name
        elif typ == "AWS::SecretsManager::Secret":
            name = r.resolve(props.get("Name", f"{stack_name}-{lid}"))
            arn = sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(36))["ARN"]
            r.refs[lid] = arn
        elif typ in ("AWS::Serverless::LayerVersion", "AWS::Serverless::HttpApi"):
            r.refs[lid] = f"local-{lid}"

    functions = _functions(t, r, stack_name)
    return Stack(stack_name, r, functions, queue_urls, tables)


def _functions(t: dict[str, Any], r: Resolver, stack_name: str) -> dict[str, FunctionSpec]:
    glob = t.get("Globals", {}).get("Function", {})
    out: dict[str, FunctionSpec] = {}
    for lid, res in t["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        p = res["Properties"]
        r.refs[lid] = f"{stack_name}-{lid}"
        env = dict(r.resolve(glob.get("Environment", {}).get("Variables", {})))
        env.update(r.resolve(p.get("Environment", {}).get("Variables", {})))
        spec = FunctionSpec(
            logical_id=lid,
            code_uri=ROOT / p["CodeUri"],
            handler=p["Handler"],
            timeout=int(p.get("Timeout", glob.get("Timeout", 3))),
            environment={k: str(v) for k, v in env.items()},
        )
        for ev in p.get("Events", {}).values():
            props = ev.get("Properties", {})
            if ev["Type"] == "HttpApi":
                spec.http_routes.append((props["Method"].upper(), props["Path"]))
            elif ev["Type"] == "SQS":
                spec.sqs_sources.append(r.resolve(props))
            elif ev["Type"] in ("Schedule", "ScheduleV2"):
                spec.schedules.append(r.resolve(props))
        out[lid] = spec
    return out
