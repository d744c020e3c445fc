use super::*;
use serde_json::json;

fn published(template: &str) -> Value {
    crate::template::published_for_tests(template)
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
        assert!(
            f.is_empty(),
            "{t}: {:#?}",
            f.iter().map(|f| f.to_string()).collect::<Vec<_>>()
        );
    }
}

fn messages(def: Value) -> Vec<String> {
    check(&def, "t.json", None)
        .iter()
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn findings_name_state_and_pointer() {
    let m = messages(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}));
    assert!(
        m.iter().any(
            |m| m == "ERROR t.json, state `A` at /States/A/Next: `Nowhere` is not a state here"
        ),
        "{m:#?}"
    );
}

#[test]
fn jsonata_machine_cannot_hold_jsonpath_state_but_the_reverse_is_fine() {
    let m = messages(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
    );
    assert!(
        m.iter().any(|m| m.contains("cannot hold JSONPath states")),
        "{m:#?}"
    );
    let m = messages(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "End": true}}}),
    );
    assert!(m.is_empty(), "{m:#?}");
}

#[test]
fn a_nested_state_takes_the_machine_s_language_not_its_map_s() {
    // AWS: a state without QueryLanguage uses the top-level one; the validator and the engine
    // read it from the same parsed model
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "QueryLanguage": "JSONata",
        "Items": "{% [1, 2] %}", "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Parameters": {"n.$": "$"}, "End": true}}}}}});
    let m = messages(def.clone());
    assert!(m.is_empty(), "{m:#?}");
    let e = crate::engine::execute_virtual(
        &def,
        json!({}),
        "t",
        &crate::engine::scenario::Mocked::new(Default::default()),
    );
    assert_eq!(e.output, json!([{"n": 1}, {"n": 2}]), "{:?}", e.error);
}
