"""The local stack reads template.yaml itself and speaks API Gateway's v2 payload."""

import base64

from tsunagu_local.cfn import Resolver, load_template
from tsunagu_local.gateway import Route, build_v2_event, to_http
from tsunagu_local.resources import TEMPLATE


def test_template_loads_with_short_tags_and_names_every_function_route():
    t = load_template(TEMPLATE)
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for r in t["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert ("POST", "/line/{accountId}/webhook") in routes
    assert ("POST", "/accounts") in routes
    assert ("PUT", "/accounts/{accountId}/channel") in routes


def test_every_dead_letter_queue_has_an_alarm_on_its_first_message():
    res = load_template(TEMPLATE)["Resources"]
    dlqs = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in res.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {})
    }
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in res.values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert len(dlqs) == 8 and dlqs == alarmed
    for a in res.values():
        if a["Type"] == "AWS::CloudWatch::Alarm":
            p = a["Properties"]
            assert (p["Threshold"], p["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
            assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_resolver_handles_sub_ref_getatt_and_if():
    t = {"Parameters": {"Stage": {"Default": "dev"}}, "Conditions": {"C": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}}}
    r = Resolver(t, {}, {"AWS::Region": "ap-northeast-1"})
    r.refs["Q"] = "https://q"
    r.attrs[("Q", "Arn")] = "arn:q"
    assert r.resolve({"Fn::Sub": "tsunagu/${Stage}/${AWS::Region}/${Q.Arn}"}) == "tsunagu/dev/ap-northeast-1/arn:q"
    assert r.resolve({"Fn::If": ["C", {"Ref": "Q"}, "no"]}) == "https://q"


def test_more_specific_routes_win():
    a = Route("GET", "/accounts/{accountId}", None)  # type: ignore[arg-type]
    b = Route("GET", "/accounts/{accountId}/friends", None)  # type: ignore[arg-type]
    assert sorted([a, b], key=lambda r: r.priority)[0] is b


def test_v2_event_carries_path_params_and_base64_for_binary_bodies():
    r = Route("POST", "/line/{accountId}/webhook", None)  # type: ignore[arg-type]
    ev = build_v2_event(
        "POST",
        "/line/a/webhook",
        "x=1&x=2",
        {"content-type": "application/octet-stream"},
        b"\x00\x01",
        r,
        {"accountId": "a"},
        "127.0.0.1",
    )
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "POST /line/{accountId}/webhook"
    assert ev["pathParameters"] == {"accountId": "a"}
    assert ev["queryStringParameters"] == {"x": "1,2"}
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == b"\x00\x01"


def test_v2_responses_map_to_http():
    assert to_http({"statusCode": 201, "headers": {"X-A": "1"}, "body": "ok"}) == (201, {"x-a": "1"}, b"ok")
    assert to_http({"a": 1})[0] == 200


def test_the_tracer_never_copies_responses_or_errors_into_traces():
    """Responses hold API keys, ID-token cookies and live coupon codes."""
    env = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
