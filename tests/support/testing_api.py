"""Drives deploy local's TestState and RedriveExecution with boto3, as a user's test suite
would, and prints what it saw as JSON (the Rust test asserts on it).

    python testing_api.py ENDPOINT test-state|redrive

Host prefix injection is off: the SDKs send TestState to `sync-<host>`, a name that a
loopback endpoint does not have (AWS_DISABLE_HOST_PREFIX_INJECTION / inject_host_prefix)."""
import json
import os
import subprocess
import sys
import time

import boto3
from botocore.config import Config

URL, WHAT = sys.argv[1], sys.argv[2]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=URL,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
    config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
)
ROLE = "arn:aws:iam::123456789012:role/r"


def call(op, **kw):
    """The answer without its metadata, or the error's code and message."""
    try:
        r = getattr(sfn, op)(**kw)
        r.pop("ResponseMetadata", None)
        return r
    except sfn.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}


def test_state(**kw):
    for k in ("definition",):
        if not isinstance(kw[k], str):
            kw[k] = json.dumps(kw[k])
    return call("test_state", **kw)


LAMBDA = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "nowhere", "Payload.$": "$"},
          "ResultSelector": {"answer.$": "$.Payload.answer"}, "Next": "After"}
HANDLED = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "nowhere"},
           "Retry": [{"ErrorEquals": ["Other"]}, {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}],
           "Catch": [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "ResultPath": "$.error", "Next": "Throttled"}],
           "Next": "After"}
START = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}, "End": True}


def testing():
    seen = {}
    pas = {"Type": "Pass", "InputPath": "$.initialData", "Parameters": {"staticValue": "some value", "inputValue.$": "$.fieldFromInput"},
           "ResultPath": "$.modifiedData", "Next": "Next"}
    seen["pass"] = test_state(definition=pas, inspectionLevel="DEBUG",
                              input=json.dumps({"initialData": {"fieldFromInput": "value from input", "otherField": "other"}, "unrelatedData": {"someOtherField": 1234}}))
    seen["pass_info"] = test_state(definition=pas, input=json.dumps({"initialData": {"fieldFromInput": 1}}))
    seen["lambda"] = test_state(definition=LAMBDA, inspectionLevel="DEBUG", input=json.dumps({"q": 1}),
                                mock={"result": json.dumps({"Payload": {"answer": 42}, "StatusCode": 200})})
    wrong = json.dumps({"StatusCode": "200"})
    for mode in ("STRICT", "PRESENT", "NONE"):
        seen[f"wrong_type_{mode}"] = test_state(definition=START if False else {**LAMBDA, "ResultSelector": {"code.$": "$.StatusCode"}},
                                                mock={"result": wrong, "fieldValidationMode": mode})
    seen["unknown_field_STRICT"] = test_state(definition={**LAMBDA, "ResultSelector": {"r.$": "$.Random"}},
                                              mock={"result": json.dumps({"Random": 1})})
    for mode in ("STRICT", "PRESENT"):
        seen[f"missing_required_{mode}"] = test_state(definition=START, mock={"result": json.dumps({"startDate": "x"}), "fieldValidationMode": mode})
    seen["caught"] = test_state(definition=HANDLED, inspectionLevel="DEBUG", input=json.dumps({"order": 7}),
                                mock={"errorOutput": {"error": "Lambda.TooManyRequestsException", "cause": "Rate exceeded"}})
    service = {"errorOutput": {"error": "Lambda.ServiceException", "cause": "Service error"}}
    seen["retried"] = test_state(definition=HANDLED, inspectionLevel="DEBUG", mock=service, stateConfiguration={"retrierRetryCount": 1})
    seen["spent"] = test_state(definition=HANDLED, inspectionLevel="DEBUG", mock=service, stateConfiguration={"retrierRetryCount": 3})
    machine = {"QueryLanguage": "JSONata", "StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Price"},
        "Price": {"Type": "Pass", "Assign": {"total": "{% $price * $states.input.quantity %}"},
                  "Output": "{% {'total': $price * $states.input.quantity} %}", "Next": "Done"},
        "Done": {"Type": "Succeed"}}}
    seen["by_name"] = test_state(definition=machine, stateName="Price", inspectionLevel="DEBUG",
                                 input=json.dumps({"quantity": 3}), variables=json.dumps({"price": 5}))
    seen["unknown_name"] = test_state(definition=machine, stateName="Nowhere")
    mapped = {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "End": True}
    seen["map_without_mock"] = test_state(definition=mapped, input="[1, 2]")
    seen["map_mocked"] = test_state(definition=mapped, input="[1, 2]", inspectionLevel="DEBUG", mock={"result": "[10, 20]"})
    seen["both"] = test_state(definition=LAMBDA, mock={"result": "{}", "errorOutput": {"error": "E", "cause": "c"}})
    seen["mock_on_pass"] = test_state(definition=pas, mock={"result": "{}"})
    seen["invalid"] = test_state(definition={"Type": "Nonsense"})
    # the AWS CLI (from the same venv), unchanged but for the host prefix
    cli = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "aws"), "stepfunctions", "test-state", "--endpoint-url", URL,
         "--definition", json.dumps(LAMBDA), "--input", '{"q": 1}', "--inspection-level", "DEBUG",
         "--mock", json.dumps({"result": json.dumps({"Payload": {"answer": 1}, "StatusCode": 200})})],
        capture_output=True, text=True,
        env=dict(os.environ, AWS_DISABLE_HOST_PREFIX_INJECTION="true", AWS_DEFAULT_REGION="us-east-1",
                 AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true"))
    seen["aws_cli"] = json.loads(cli.stdout) if cli.returncode == 0 else {"failed": cli.stderr}
    seen["machine_without_name"] = test_state(definition=machine)
    seen["bad_input"] = test_state(definition=pas, input="{not json")
    seen["context_without_mock"] = test_state(definition=pas, context=json.dumps({"Execution": {"Name": "mine"}}))
    named = {"Type": "Task", "QueryLanguage": "JSONata", "Resource": "arn:aws:states:::lambda:invoke",
             "Arguments": {"FunctionName": "f", "Payload": {"who": "{% $states.context.Execution.Name %}"}}, "End": True}
    seen["context"] = test_state(definition=named, inspectionLevel="DEBUG", context=json.dumps({"Execution": {"Name": "mine"}}),
                                 mock={"result": json.dumps({"Payload": {}, "StatusCode": 200})})
    return seen


def wait(arn):
    for _ in range(400):
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            d.pop("ResponseMetadata", None)
            return {k: (str(v) if k.endswith("Date") else v) for k, v in d.items()}
        time.sleep(0.05)
    raise SystemExit(f"{arn} still running")


def redriving():
    seen = {}
    flaky = "{% $states.context.Execution.RedriveCount = 0 ? $error('the first run fails here') : {'ok': $prepared, 'redrives': $states.context.Execution.RedriveCount} %}"
    definition = {"QueryLanguage": "JSONata", "StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Assign": {"prepared": "{% $states.input.n %}"}, "Next": "Flaky"},
        "Flaky": {"Type": "Pass", "Output": flaky, "Next": "Items"},
        "Items": {"Type": "Map", "Items": "{% [1, 2, 3] %}", "End": True,
                  "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "Output": "{% $states.input * 10 %}", "End": True}}}}}}
    m = sfn.create_state_machine(name="redrive", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=m, name="flaky", input=json.dumps({"n": 7}))["executionArn"]
    seen["failed"] = wait(arn)
    seen["redriven"] = call("redrive_execution", executionArn=arn, clientToken="once")
    seen["again_same_token"] = call("redrive_execution", executionArn=arn, clientToken="once")
    seen["after"] = wait(arn)
    seen["history"] = [{"type": e["type"], "state": e.get("stateEnteredEventDetails", {}).get("name"),
                        "redriveCount": e.get("executionRedrivenEventDetails", {}).get("redriveCount")}
                       for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]
    ok = sfn.start_execution(stateMachineArn=m, name="never-failed", input=json.dumps({"n": 1}))["executionArn"]
    wait(ok)  # fails too (RedriveCount 0): the next machine succeeds
    good = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    g = sfn.create_state_machine(name="fine", definition=json.dumps(good), roleArn=ROLE)["stateMachineArn"]
    fine = sfn.start_execution(stateMachineArn=g, name="fine")["executionArn"]
    seen["succeeded"] = wait(fine)
    seen["redrive_succeeded"] = call("redrive_execution", executionArn=fine)
    seen["redrive_again"] = call("redrive_execution", executionArn=arn)
    names = lambda f: sorted(e["name"] for e in sfn.list_executions(stateMachineArn=m, redriveFilter=f)["executions"])
    seen["listed_redriven"] = names("REDRIVEN")
    seen["listed_not_redriven"] = names("NOT_REDRIVEN")
    seen["listed_items"] = [{k: e.get(k) for k in ("name", "redriveCount")} for e in sfn.list_executions(stateMachineArn=m)["executions"]]
    # Map: only the iterations that failed run again
    items = {"QueryLanguage": "JSONata", "StartAt": "Items", "States": {
        "Items": {"Type": "Map", "Items": "{% [1, 2, 3] %}", "End": True,
                  "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True,
                      "Output": "{% $states.input = 2 and $states.context.Execution.RedriveCount = 0 ? $error('item 2 fails once') : $states.input * 10 %}"}}}}}}
    mm = sfn.create_state_machine(name="items", definition=json.dumps(items), roleArn=ROLE)["stateMachineArn"]
    marn = sfn.start_execution(stateMachineArn=mm, name="items")["executionArn"]
    seen["map_failed"] = wait(marn)
    sfn.redrive_execution(executionArn=marn)
    seen["map_after"] = wait(marn)
    events = sfn.get_execution_history(executionArn=marn, maxResults=1000)["events"]
    at = next(i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven")
    seen["map_iterations_rerun"] = [e["mapIterationStartedEventDetails"]["index"] for e in events[at:] if e["type"] == "MapIterationStarted"]
    return seen


print(json.dumps(testing() if WHAT == "test-state" else redriving(), default=str))
