//! Environments: isolated copies of the stacks, with every AWS name prefixed by the env's name;
//! the name of a branch's env, and what an env name may be.

use crate::error::{Error, Result};

pub const DEFAULT_ENV: &str = "default";

/// A resource name in an env: the env prefixes the name, or its last segment for path-like
/// names (`/aws/lambda/pr-1-resize`), so names derived from one another still match.
pub fn env_name(env: &str, name: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{env}-{last}"),
        None => format!("{env}-{name}"),
    }
}

/// Env names become part of resource names: keep them short and plain.
/// The env for a branch name: the branch itself when it already is a usable env name, else
/// its lowercase letters and digits joined by dashes, cut to fit, with a short hash of the
/// whole branch name so that distinct branches never share an env.
pub fn env_for_branch(branch: &str) -> String {
    let branch = branch.trim();
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if check_env(branch).is_ok() {
        return branch.to_string();
    }
    let mut slug = String::new();
    for c in branch.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let hash: String = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(branch.as_bytes())[..3])
    };
    let base: String = slug.trim_matches('-').chars().take(13).collect();
    let base = base.trim_end_matches('-');
    if base.is_empty() {
        format!("b-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

pub fn check_env(env: &str) -> Result<()> {
    let ok = !env.is_empty()
        && env.len() <= 20
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !env.starts_with('-')
        && !env.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::user(format!("env name {env:?} is not usable"))
            .help("use 1 to 20 lowercase letters, digits and dashes (it prefixes resource names), e.g. --env pr-42"))
    }
}
