use super::*;
use serde_json::json;

fn published(template: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates").join(template);
    let vars = [
        "CONNECTION_ARN",
        "DENY_POLICY_ARN",
        "IAM_USER_NAME",
        "TOPIC_ARN",
        "ADMIN_GROUP_NAME",
        "DEVELOP_GROUP_NAME",
        "TASK_ARN",
        "LAMBDA_NAME",
        "DYNAMODB_TABLE_NAME",
    ]
    .iter()
    .map(|k| (k.to_string(), Value::String(format!("x-{k}"))))
    .collect();
    crate::template::render_file(&path, template, &vars).unwrap().value
}

#[test]
fn the_five_published_definitions_are_clean() {
    for t in [
        "should-i-deploy/jsonata.json",
        "create-new-user/jsonata.json",
        "bucket-replication/jsonata.json",
        "resize-image/jsonata.json",
        "resize-image/jsonpath.json",
    ] {
        let f = check(&published(t), t, None);
        assert!(f.is_empty(), "{t}: {:#?}", f.iter().map(|f| f.to_string()).collect::<Vec<_>>());
    }
}

fn messages(def: Value) -> Vec<String> {
    check(&def, "t.json", None).iter().map(|f| f.to_string()).collect()
}

#[test]
fn findings_name_state_and_pointer() {
    let m = messages(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}));
    assert!(m.iter().any(|m| m == "ERROR t.json, state `A` at /States/A/Next: `Nowhere` is not a state here"), "{m:#?}");
}

#[test]
fn jsonata_machine_cannot_hold_jsonpath_state_but_the_reverse_is_fine() {
    let m = messages(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
    );
    assert!(m.iter().any(|m| m.contains("cannot hold JSONPath states")), "{m:#?}");
    let m =
        messages(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "End": true}}}));
    assert!(m.is_empty(), "{m:#?}");
}
