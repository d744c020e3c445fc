//! Secrets never in clear in state, plans, outputs or logs. A value is secret when a kind
//! declares its attribute sensitive (an events connection's password) or when it comes from a
//! variable declared `sensitive = true`. State keeps only a salted hash of it
//! (`sensitive:sha256:<salt>:<hex>`), enough to tell whether the manifest's value changed;
//! whatever people read shows `(sensitive)` instead.

use serde_json::Value;
use sha2::{Digest, Sha256};

const MARK: &str = "sensitive:sha256:";
pub const SHOWN: &str = "(sensitive)";

fn hash(salt: &str, clear: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(clear.as_bytes());
    hex::encode(h.finalize())
}

fn new_salt() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hash(&format!("{nanos}:{}", std::process::id()), "salt")[..16].to_string()
}

/// The stored form of a secret.
pub fn seal_str(clear: &str) -> String {
    let salt = new_salt();
    format!("{MARK}{salt}:{}", hash(&salt, clear))
}

pub fn is_sealed(v: &str) -> bool {
    v.starts_with(MARK)
}

/// Whether `clear` is the value `sealed` was made from.
pub fn same(sealed: &str, clear: &str) -> bool {
    let Some(rest) = sealed.strip_prefix(MARK) else {
        return false;
    };
    let Some((salt, hex)) = rest.split_once(':') else {
        return false;
    };
    hash(salt, clear) == hex
}

/// `value` with the attributes at `paths` (JSON pointers) and every string holding one of
/// `secrets` replaced by their sealed form.
pub fn seal(value: &Value, paths: &[&str], secrets: &[String]) -> Value {
    let mut v = value.clone();
    for p in paths {
        if let Some(Value::String(s)) = v.pointer_mut(p) {
            if !is_sealed(s) {
                *s = seal_str(s);
            }
        }
    }
    walk_strings(&mut v, &mut |s| {
        if !is_sealed(s)
            && secrets
                .iter()
                .any(|x| !x.is_empty() && s.contains(x.as_str()))
        {
            *s = seal_str(s);
        }
    });
    v
}

/// `have` (as recorded: secrets sealed) with every sealed string whose clear value is the one
/// in `want` at the same place replaced by that clear value, so that comparing the two sees
/// only real changes.
pub fn unseal_matching(want: &Value, have: &Value) -> Value {
    match (want, have) {
        (Value::String(w), Value::String(h)) if is_sealed(h) && same(h, w) => {
            Value::String(w.clone())
        }
        (Value::Object(w), Value::Object(h)) => Value::Object(
            h.iter()
                .map(|(k, hv)| {
                    (
                        k.clone(),
                        w.get(k)
                            .map(|wv| unseal_matching(wv, hv))
                            .unwrap_or_else(|| hv.clone()),
                    )
                })
                .collect(),
        ),
        (Value::Array(w), Value::Array(h)) => Value::Array(
            h.iter()
                .enumerate()
                .map(|(i, hv)| {
                    w.get(i)
                        .map(|wv| unseal_matching(wv, hv))
                        .unwrap_or_else(|| hv.clone())
                })
                .collect(),
        ),
        _ => have.clone(),
    }
}

/// What people may read of `value`: sealed strings, attributes at `paths` and strings holding
/// a secret shown as `(sensitive)`.
pub fn mask(value: &Value, paths: &[&str], secrets: &[String]) -> Value {
    let mut v = value.clone();
    for p in paths {
        if let Some(s @ Value::String(_)) = v.pointer_mut(p) {
            *s = Value::String(SHOWN.into());
        }
    }
    walk_strings(&mut v, &mut |s| {
        if is_sealed(s)
            || secrets
                .iter()
                .any(|x| !x.is_empty() && s.contains(x.as_str()))
        {
            *s = SHOWN.into();
        }
    });
    v
}

/// An old and a new value as people may see them: every secret place shown as `(sensitive)`
/// in the old one, and in the new one as `(sensitive)` too when it did not change, else as
/// `(sensitive, changed)`, so that a plan still tells a change without telling the value.
pub fn mask_pair(old: &mut Value, new: &mut Value, paths: &[&str], secrets: &[String]) {
    let secret = |s: &str| {
        is_sealed(s)
            || secrets
                .iter()
                .any(|x| !x.is_empty() && s.contains(x.as_str()))
    };
    for p in paths {
        let changed = old.pointer(p) != new.pointer(p);
        if let Some(v) = old.pointer_mut(p) {
            *v = Value::String(SHOWN.into());
        }
        if let Some(v) = new.pointer_mut(p) {
            *v = shown(changed);
        }
    }
    pair(Some(old), Some(new), &secret);
}

/// Masks the secret strings of two values side by side, saying where they differ.
fn pair(o: Option<&mut Value>, n: Option<&mut Value>, secret: &dyn Fn(&str) -> bool) {
    match (o, n) {
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            for (k, nv) in n.iter_mut() {
                pair(o.get_mut(k), Some(nv), secret);
            }
            for (k, ov) in o.iter_mut() {
                if !n.contains_key(k) {
                    pair(Some(ov), None, secret);
                }
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) => {
            let len = o.len().max(n.len());
            for i in 0..len {
                let (oi, ni) = (o.get_mut(i), n.get_mut(i));
                pair(oi, ni, secret);
            }
        }
        (o, n) => {
            let text =
                |v: &Option<&mut Value>| v.as_deref().and_then(Value::as_str).map(str::to_string);
            let (os, ns) = (text(&o), text(&n));
            if os.as_deref().is_some_and(secret) || ns.as_deref().is_some_and(secret) {
                let changed = os != ns;
                if let Some(o) = o.filter(|o| o.is_string()) {
                    *o = Value::String(SHOWN.into());
                }
                if let Some(n) = n.filter(|n| n.is_string()) {
                    *n = Value::String(
                        if changed {
                            "(sensitive, changed)"
                        } else {
                            SHOWN
                        }
                        .into(),
                    );
                }
            }
        }
    }
}

/// What is shown of a secret value: that it changed, or only that it is there.
fn shown(changed: bool) -> Value {
    Value::String(
        if changed {
            "(sensitive, changed)"
        } else {
            SHOWN
        }
        .into(),
    )
}

/// `text` with every secret replaced by `(sensitive)` (for messages and logs).
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), SHOWN))
}

fn walk_strings(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_values_keep_no_clear_text_and_still_tell_a_change() {
        let attrs = json!({"name": "c", "basic": {"username": "u", "password": "hunter2"}, "url": "https://x/?key=tok-123"});
        let secrets = vec!["tok-123".to_string()];
        let sealed = seal(&attrs, &["/basic/password"], &secrets);
        let text = sealed.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("tok-123"),
            "{text}"
        );
        assert_eq!(sealed["name"], "c");
        // sealing again keeps the same seal
        assert_eq!(seal(&sealed, &["/basic/password"], &secrets), sealed);
        // the same clear values compare equal; a changed password does not
        assert_eq!(unseal_matching(&attrs, &sealed), attrs);
        let changed = json!({"name": "c", "basic": {"username": "u", "password": "hunter3"}, "url": "https://x/?key=tok-123"});
        assert_ne!(unseal_matching(&changed, &sealed), changed);
        // two seals of one value differ (salted), both match it
        let (a, b) = (seal_str("p"), seal_str("p"));
        assert!(same(&a, "p") && same(&b, "p") && !same(&a, "q"));
    }

    #[test]
    fn a_changed_secret_is_told_without_its_value() {
        let mut old =
            json!({"basic": {"username": "u", "password": seal_str("a")}, "url": "x?k=tok-1"});
        let mut new = json!({"basic": {"username": "u", "password": "b"}, "url": "x?k=tok-1"});
        mask_pair(
            &mut old,
            &mut new,
            &["/basic/password"],
            &["tok-1".to_string()],
        );
        assert_eq!(
            old,
            json!({"basic": {"username": "u", "password": "(sensitive)"}, "url": "(sensitive)"})
        );
        assert_eq!(
            new,
            json!({"basic": {"username": "u", "password": "(sensitive, changed)"}, "url": "(sensitive)"})
        );
    }

    #[test]
    fn masks_show_no_secret() {
        let attrs = json!({"basic": {"password": "hunter2"}, "note": "uses tok-123", "sealed": seal_str("x")});
        let shown = mask(&attrs, &["/basic/password"], &["tok-123".to_string()]);
        assert_eq!(
            shown,
            json!({"basic": {"password": "(sensitive)"}, "note": "(sensitive)", "sealed": "(sensitive)"})
        );
        assert_eq!(
            mask_text("key tok-123 here", &["tok-123".to_string()]),
            "key (sensitive) here"
        );
    }
}
