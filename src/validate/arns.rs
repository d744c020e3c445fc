//! Which IAM actions act on resources, and the ARN formats they take: AWS's Service
//! Authorization Reference (`iam-resources.json.gz`, written by `scripts/gen-iam-resources`).
//! An action that takes a resource can be granted on that resource's ARN instead of `*`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::LazyLock;

static TABLE: &[u8] = include_bytes!("iam-resources.json.gz");

#[derive(Deserialize)]
struct Service {
    /// resource type → its ARN format
    r: BTreeMap<String, String>,
    /// action → the resource types it takes
    a: BTreeMap<String, Vec<String>>,
    /// the actions granted only on `*`
    n: Vec<String>,
}

static SERVICES: LazyLock<BTreeMap<String, Service>> = LazyLock::new(|| {
    let mut text = String::new();
    flate2::read::GzDecoder::new(TABLE)
        .read_to_string(&mut text)
        .expect("iam-resources.json.gz is gzipped text");
    serde_json::from_str(&text).expect("iam-resources.json.gz holds the action table")
});

/// The ARN formats an action can be granted on (`datasync:StartTaskExecution` → the task's),
/// in AWS's notation (`arn:${Partition}:datasync:${Region}:${AccountId}:task/${TaskId}`). An
/// action pattern (`s3:Get*`) has them when every action it matches does; an action AWS grants
/// only on `*`, or one it does not know, has none.
pub fn formats(action: &str) -> Vec<String> {
    let Some((prefix, name)) = action.split_once(':') else {
        return vec![];
    };
    let Some(svc) = SERVICES.get(&prefix.to_ascii_lowercase()) else {
        return vec![];
    };
    let matches = |a: &String| glob(name, a);
    if svc.n.iter().any(matches) {
        return vec![];
    }
    let mut out: Vec<String> = svc
        .a
        .iter()
        .filter(|(a, _)| matches(a))
        .flat_map(|(_, types)| types.iter().filter_map(|t| svc.r.get(t).cloned()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Glob match, case-insensitive (IAM actions), `*` and `?`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        text.to_lowercase().chars().collect(),
    );
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::formats;

    #[test]
    fn actions_on_resources_name_their_arns_and_star_only_ones_none() {
        assert_eq!(
            formats("datasync:StartTaskExecution"),
            ["arn:${Partition}:datasync:${Region}:${AccountId}:task/${TaskId}"]
        );
        assert_eq!(
            formats("IAM:addusertogroup"),
            ["arn:${Partition}:iam::${Account}:group/${GroupNameWithPath}"]
        );
        assert!(formats("states:InvokeHTTPEndpoint")[0].contains(":stateMachine:"));
        // granted only on `*`
        assert!(formats("states:ListStateMachines").is_empty());
        assert!(formats("s3:ListAllMyBuckets").is_empty());
        // a pattern: all it matches take resources, or it has none
        assert!(!formats("sqs:Send*").is_empty());
        assert!(formats("s3:List*").is_empty());
        assert!(formats("nosuch:Thing").is_empty());
        assert!(formats("*").is_empty());
    }
}
