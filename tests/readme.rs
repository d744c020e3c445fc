//! Docs that cannot rot: every shell block of README.md and of the guides in docs/ runs, in
//! order (README.md, then `GUIDES`), in one shell, as a user pastes them: in a copy of the
//! project, after the quick start (the first block) has started moto, `deploy local` and the
//! stand-in API, with this build's binary. A block is left out only behind a
//! `<!-- readme-test: skip: why -->` line that says why. Every relative link of them leads to
//! a file that exists.

mod support;

use std::path::Path;
use support::*;

struct Block {
    line: usize,
    text: String,
    skip: Option<String>,
}

/// The ```sh blocks of a Markdown text, each with its first line and the skip reason above it.
fn shell_blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    let mut last_marker: Option<String> = None;
    while let Some((i, line)) = lines.next() {
        if let Some(why) = line
            .trim()
            .strip_prefix("<!-- readme-test: skip:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            last_marker = Some(why.trim().to_string());
            continue;
        }
        if line.trim() == "```sh" {
            let text: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| l.trim() != "```")
                .collect();
            out.push(Block {
                line: i + 2,
                text: text.join("\n"),
                skip: last_marker.take(),
            });
        } else if !line.trim().is_empty() {
            last_marker = None;
        }
    }
    out
}

#[test]
fn the_readme_blocks_are_found_with_their_skip_reasons() {
    let md = "a\n<!-- readme-test: skip: a server -->\n```sh\nserve\n```\n\n```sh\none\ntwo\n```\n<!-- readme-test: skip: x -->\ntext\n```sh\nthree\n```\n";
    let b = shell_blocks(md);
    assert_eq!(b.len(), 3);
    assert_eq!(
        (b[0].line, b[0].text.as_str(), b[0].skip.as_deref()),
        (4, "serve", Some("a server"))
    );
    assert_eq!(
        (b[1].line, b[1].text.as_str(), b[1].skip.as_deref()),
        (8, "one\ntwo", None)
    );
    assert_eq!(
        b[2].skip, None,
        "a marker holds only for the block right after it"
    );
}

/// The guides whose shell blocks run after the README's, in this order (each goes on from
/// what the ones before it deployed).
const GUIDES: &[&str] = &[
    "using.md",
    "ci.md",
    "workflows.md",
    "local.md",
    "validation.md",
    "changing-a-live-stack.md",
    "stacks.md",
];

/// Every Markdown file of the docs: the README, and each file of docs/.
fn markdown_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_guide_with_shell_blocks_is_run_and_every_relative_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for file in markdown_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name != "README.md" && !shell_blocks(&text).is_empty() {
            assert!(
                GUIDES.contains(&name.as_str()),
                "{name} has shell blocks: add it to GUIDES"
            );
        }
        for cap in link.captures_iter(&text) {
            let target = &cap[1];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if !file.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken relative links: {broken:#?}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 300,
        "README.md is a front door: at most 300 lines"
    );
    let first = readme.lines().take(150).collect::<Vec<_>>().join("\n");
    assert!(
        first.contains("](docs/writing-a-stack.md)"),
        "writing a stack is linked early"
    );
}

#[test]
fn every_shell_block_of_the_readme_runs() {
    require_wheelhouse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut blocks = Vec::new();
    for (file, md) in std::iter::once("README.md".to_string())
        .chain(GUIDES.iter().map(|g| format!("docs/{g}")))
        .map(|f| (f.clone(), std::fs::read_to_string(root.join(&f)).unwrap()))
    {
        blocks.extend(shell_blocks(&md).into_iter().map(|b| (file.clone(), b)));
    }
    for (file, b) in &blocks {
        if let Some(why) = &b.skip {
            assert!(
                !why.is_empty(),
                "{file}:{}: a skipped block says why",
                b.line
            );
        }
    }
    assert!(
        blocks[0].1.text.starts_with("scripts/quickstart") && blocks[0].1.skip.is_none(),
        "the quick start comes first and runs"
    );

    let copy = tempfile::tempdir().unwrap();
    for dir in ["scripts", "stacks", "templates", "examples", "docs"] {
        copy_dir(&root.join(dir), &copy.path().join(dir));
    }
    for file in ["README.md", "requirements-test.txt", "Cargo.toml"] {
        std::fs::copy(root.join(file), copy.path().join(file)).unwrap();
    }
    let mut script = String::from("set -euo pipefail\n");
    for (i, (file, b)) in blocks.iter().filter(|(_, b)| b.skip.is_none()).enumerate() {
        script.push_str(&format!("echo '### {file}:{}' >&2\n{}\n", b.line, b.text));
        // the endpoints each block leaves for a new shell (the quick start's ports)
        script.push_str(&format!(
            "cp .deploy/quickstart.env .deploy/endpoints.{i} 2>/dev/null || true\n"
        ));
    }
    let mut cmd = std::process::Command::new("bash");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("DEPLOY_") || k.starts_with("PIP_") {
            cmd.env_remove(k);
        }
    }
    let venv =
        std::env::var("DEPLOY_VENV").unwrap_or_else(|_| root.join(".venv").display().to_string());
    let out = cmd
        .args(["-c", &script])
        .current_dir(copy.path())
        .env("DEPLOY_BIN", env!("CARGO_BIN_EXE_deploy"))
        .env("DEPLOY_VENV", &venv)
        .env("AWS_CONFIG_FILE", empty_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", empty_file())
        // The Lambda package builds from the wheels fetched before the tests: nothing downloads.
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", wheelhouse())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // whatever happened, stop what the quick start left running
    for pid in ["moto.pid", "local.pid", "api.pid"] {
        if let Ok(p) = std::fs::read_to_string(copy.path().join(".deploy").join(pid)) {
            let _ = std::process::Command::new("kill").arg(p.trim()).status();
        }
    }
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let failed_at = stderr
        .lines()
        .filter(|l| l.starts_with("### "))
        .last()
        .unwrap_or("(before the first block)");
    assert!(
        out.status.success(),
        "the README block at {failed_at} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for seen in [
        "should-i-deploy: 12 changes applied", // the quick start deployed
        "Call Should I deploy API: task http:invoke", // and ran it on deploy local
        "execution SUCCEEDED",
        "arn:aws:iam::aws:policy/AWSDenyAll", // --answer no locked the CI user
        "sent task success with output {\"admin\": true}",
        "sent task failure Rejected",
        "admins-group", // john-doe, approved as admin
        "wrote stacks/should-i-deploy/tests/bad-day-from-prod.json", // recorded from that run
        "ok   should-i-deploy/bad-day-from-prod", // and passing at once
        "per execution, from its 6 scenarios on the local engine", // priced, the new one too
    ] {
        assert!(
            stdout.contains(seen),
            "missing {seen:?} in\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("failed to"),
        "every resource changed as asked:\n{stderr}"
    );
    // every quick start of the README (run three times) kept the ports of the first
    let mut endpoints = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(copy.path().join(".deploy"))
        .unwrap()
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("endpoints.")
        {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let line = text
                .lines()
                .find(|l| l.contains("AWS_ENDPOINT_URL="))
                .unwrap_or_default();
            endpoints.insert(line.to_string());
        }
    }
    assert_eq!(
        endpoints.len(),
        1,
        "the quick start moved its ports: {endpoints:?}"
    );
    for file in [
        "should-i-deploy.svg",
        "run.svg",
        ".deploy/quickstart.env",
        "stacks/should-i-deploy/tests/bad-day.mock-config.json",
    ] {
        assert!(copy.path().join(file).exists(), "{file} was written");
    }
}
