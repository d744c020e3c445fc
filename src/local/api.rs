//! The JSON 1.0 protocol's small parts that every operation uses: the error an SDK matches
//! on, required arguments, names, tags, pages, timestamps.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// An API error: HTTP status, the error code the SDK matches on, a message.
#[derive(Debug)]
pub(super) struct ApiError(pub(super) u16, pub(super) &'static str, pub(super) String);

pub(super) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(400, code, message.into())
}

pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(super) fn str_arg<'a>(body: &'a Value, k: &str) -> std::result::Result<&'a str, ApiError> {
    body[k].as_str().ok_or_else(|| {
        bad(
            "ValidationException",
            format!("1 validation error detected: {k} must not be null"),
        )
    })
}

pub(super) fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn tags_of(body: &Value) -> BTreeMap<String, String> {
    body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(super) fn page<T>(
    items: &[T],
    body: &Value,
    default: usize,
) -> std::result::Result<(std::ops::Range<usize>, Option<String>), ApiError> {
    let from = match body["nextToken"].as_str() {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad("InvalidToken", format!("invalid nextToken {t:?}")))?,
        None => 0,
    }
    .min(items.len());
    let max = body["maxResults"]
        .as_u64()
        .filter(|&m| m > 0)
        .map(|m| m as usize)
        .unwrap_or(default);
    let to = (from + max).min(items.len());
    Ok((from..to, (to < items.len()).then(|| to.to_string())))
}

pub(super) type ApiResult = std::result::Result<Value, ApiError>;

pub(super) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
