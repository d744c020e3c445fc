"""Calls every operation of the Step Functions API (37) on an endpoint through one client that
nobody here wrote, and prints which answered as JSON (the Rust test asserts on it).

    python every_operation.py ENDPOINT boto3|cli|js [JS_DIR]

boto3 (the SDK), cli (`python -m awscli stepfunctions <operation> --cli-input-json ...`, one
process per call, as a shell script would), js (@aws-sdk/client-sfn through a small bridge
process, `sfn_bridge.cjs`, installed in JS_DIR). Host prefix injection is off for all three:
StartSyncExecution and TestState go to `sync-<host>` otherwise, a name a loopback endpoint does
not have."""
import json
import os
import subprocess
import sys
import time

URL, CLIENT = sys.argv[1], sys.argv[2]
ROLE = "arn:aws:iam::123456789012:role/r"
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", AWS_DISABLE_HOST_PREFIX_INJECTION="true",
           AWS_MAX_ATTEMPTS="1")


class Failed(Exception):
    pass


def snake(op):
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def kebab(op):
    return snake(op).replace("_", "-")


def boto3_caller():
    import boto3
    from botocore.config import Config
    sfn = boto3.client("stepfunctions", endpoint_url=URL, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing",
                       config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=70))

    def call(op, params):
        try:
            r = getattr(sfn, snake(op))(**params)
        except Exception as e:
            raise Failed(str(e))
        r.pop("ResponseMetadata", None)
        return json.loads(json.dumps(r, default=str))
    return call


def cli_caller():
    def call(op, params):
        p = subprocess.run([sys.executable, "-m", "awscli", "stepfunctions", kebab(op), "--endpoint-url", URL,
                            "--cli-input-json", json.dumps(params), "--output", "json"],
                           capture_output=True, text=True, env=ENV, timeout=120)
        if p.returncode != 0:
            raise Failed(p.stderr.strip()[-300:])
        return json.loads(p.stdout) if p.stdout.strip() else {}
    return call


def js_caller(js_dir):
    bridge = subprocess.Popen(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "sfn_bridge.cjs"), URL, js_dir],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)

    def call(op, params):
        bridge.stdin.write(json.dumps({"op": op, "params": params}) + "\n")
        bridge.stdin.flush()
        line = bridge.stdout.readline()
        if not line:
            raise Failed("the bridge ended")
        r = json.loads(line)
        if "error" in r:
            raise Failed(f"{r['error']}: {r['message']}")
        return r["ok"]
    return call


def scenario(call):
    answered, failed = set(), {}

    def c(op, **params):
        try:
            r = call(op, params)
            answered.add(op)
            return r
        except Failed as e:
            failed[op] = str(e)
            return {}

    def machine(name, states, kind="STANDARD", start="S"):
        d = json.dumps({"StartAt": start, "States": states})
        return c("CreateStateMachine", name=name, definition=d, roleArn=ROLE, type=kind).get("stateMachineArn", "")

    def wait(arn):
        for _ in range(200):
            d = c("DescribeExecution", executionArn=arn)
            if d.get("status") != "RUNNING":
                return d
            time.sleep(0.05)
        return d

    c("ValidateStateMachineDefinition", definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}))
    m = machine("m", {"S": {"Type": "Map", "ItemsPath": "$.items",
                            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                              "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "End": True}})
    c("DescribeStateMachine", stateMachineArn=m)
    c("ListStateMachines")
    c("UpdateStateMachine", stateMachineArn=m, roleArn=ROLE)
    c("TagResource", resourceArn=m, tags=[{"key": "k", "value": "v"}])
    c("ListTagsForResource", resourceArn=m)
    c("UntagResource", resourceArn=m, tagKeys=["k"])
    v = c("PublishStateMachineVersion", stateMachineArn=m).get("stateMachineVersionArn", "")
    c("ListStateMachineVersions", stateMachineArn=m)
    a = c("CreateStateMachineAlias", name="live", routingConfiguration=[{"stateMachineVersionArn": v, "weight": 100}]).get("stateMachineAliasArn", "")
    c("DescribeStateMachineAlias", stateMachineAliasArn=a)
    c("UpdateStateMachineAlias", stateMachineAliasArn=a, description="the live one")
    c("ListStateMachineAliases", stateMachineArn=m)
    e = c("StartExecution", stateMachineArn=m, input=json.dumps({"items": [1, 2, 3]})).get("executionArn", "")
    wait(e)
    c("GetExecutionHistory", executionArn=e, reverseOrder=True, maxResults=5)
    c("ListExecutions", stateMachineArn=m)
    c("DescribeStateMachineForExecution", executionArn=e)
    runs = c("ListMapRuns", executionArn=e).get("mapRuns") or [{}]
    run = runs[0].get("mapRunArn", "")
    c("DescribeMapRun", mapRunArn=run)
    c("UpdateMapRun", mapRunArn=run, maxConcurrency=5)
    f = machine("fails", {"S": {"Type": "Fail", "Error": "Boom"}})
    fe = c("StartExecution", stateMachineArn=f).get("executionArn", "")
    wait(fe)
    c("RedriveExecution", executionArn=fe)
    w = machine("waits", {"S": {"Type": "Wait", "Seconds": 600, "End": True}})
    we = c("StartExecution", stateMachineArn=w).get("executionArn", "")
    c("StopExecution", executionArn=we, error="Enough")
    x = machine("express", {"S": {"Type": "Pass", "End": True}}, kind="EXPRESS")
    c("StartSyncExecution", stateMachineArn=x, input="{}")
    c("TestState", definition=json.dumps({"Type": "Pass", "Result": {"a": 1}, "End": True}), roleArn=ROLE)
    act = c("CreateActivity", name="work").get("activityArn", "")
    c("DescribeActivity", activityArn=act)
    c("ListActivities")
    t = machine("acts", {"S": {"Type": "Task", "Resource": act, "HeartbeatSeconds": 60, "End": True}})
    ended = []
    for answer in ("success", "failure"):
        te = c("StartExecution", stateMachineArn=t).get("executionArn", "")
        token = c("GetActivityTask", activityArn=act, workerName="w").get("taskToken", "")
        if answer == "success":
            c("SendTaskHeartbeat", taskToken=token)
            c("SendTaskSuccess", taskToken=token, output=json.dumps({"done": True}))
        else:
            c("SendTaskFailure", taskToken=token, error="Nope", cause="no")
        ended.append(wait(te).get("status"))
    c("DeleteStateMachineAlias", stateMachineAliasArn=a)
    c("DeleteStateMachineVersion", stateMachineVersionArn=v)
    c("DeleteActivity", activityArn=act)
    c("DeleteStateMachine", stateMachineArn=t)
    return {"answered": sorted(answered), "failed": failed, "activities_ended": ended}


if CLIENT == "boto3":
    call = boto3_caller()
elif CLIENT == "cli":
    call = cli_caller()
else:
    call = js_caller(os.path.abspath(sys.argv[3]))
print(json.dumps(scenario(call)))
