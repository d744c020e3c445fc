//! Lambda packaging: a content hash of a function's source folder (so plans see code changes
//! without building anything), a deployment zip built with pip for the Lambda platform and
//! cached by that hash, and a container image built with the local engine and pushed to ECR.

use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

fn skip(name: &str) -> bool {
    name == "__pycache__"
        || name.ends_with(".pyc")
        || name == ".DS_Store"
        || name.starts_with(".venv")
}

/// Files under `dir`, relative, sorted.
fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if skip(&name) {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// sha256 over every file's relative path and content.
pub fn hash_dir(dir: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for f in files(dir)? {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(dir.join(&f))?);
        h.update([0]);
    }
    Ok(hex(&h.finalize()))
}

pub fn pip_platform(arch: &str) -> Result<&'static str> {
    match arch {
        "arm64" => Ok("manylinux2014_aarch64"),
        "x86_64" => Ok("manylinux2014_x86_64"),
        other => Err(Error::user(format!(
            "Lambda architecture must be arm64 or x86_64, not {other:?}"
        ))),
    }
}

fn python_version(runtime: &str) -> Result<&str> {
    runtime
        .strip_prefix("python")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::user(format!(
                "zip packages are built for Python runtimes (python3.x), not {runtime:?}"
            ))
        })
}

/// Runs a command with a time limit, returning stdout or an error carrying the end of stderr.
async fn run(
    cmd: &mut Command,
    what: &str,
    limit: Duration,
    stdin: Option<&str>,
) -> std::result::Result<String, String> {
    cmd.kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| format!("{what}: {e}"))?;
    }
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("{what}: {e}")),
        Err(_) => return Err(format!("{what}: no answer within {} s", limit.as_secs())),
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.join("\n    ")
        ))
    }
}

/// The deployment zip for a Python function: the source folder plus its requirements.txt
/// installed for the Lambda platform (binary wheels only). Cached by content hash.
pub async fn build_zip(
    ctx: &Ctx,
    dir: &Path,
    hash: &str,
    runtime: &str,
    arch: &str,
) -> Result<Vec<u8>> {
    let platform = pip_platform(arch)?;
    let pyver = python_version(runtime)?;
    let key = hex(&Sha256::digest(
        format!("{hash}/{runtime}/{arch}").as_bytes(),
    ));
    let cache = ctx.cache_dir.join("lambda").join(format!("{key}.zip"));
    if let Ok(bytes) = std::fs::read(&cache) {
        tracing::info!("using cached package {}", cache.display());
        return Ok(bytes);
    }
    let bytes = build_zip_uncached(dir, platform, pyver).await?;
    std::fs::create_dir_all(cache.parent().unwrap())?;
    let mut tmp = tempfile::NamedTempFile::new_in(cache.parent().unwrap())?;
    tmp.write_all(&bytes)?;
    tmp.persist(&cache)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(bytes)
}

/// Lambda's package quotas: 50 MB zipped in a direct upload, 250 MB unzipped.
pub const MAX_ZIPPED: u64 = 50 * 1024 * 1024;
pub const MAX_UNZIPPED: u64 = 250 * 1024 * 1024;

pub fn check_package_size(dir: &Path, zipped: u64, unzipped: u64) -> Result<()> {
    let limits = [
        (
            unzipped,
            MAX_UNZIPPED,
            "unzipped; Lambda takes at most 250 MB",
        ),
        (
            zipped,
            MAX_ZIPPED,
            "zipped; a direct upload takes at most 50 MB",
        ),
    ];
    match limits.into_iter().find(|(size, max, _)| size > max) {
        None => Ok(()),
        Some((size, _, rule)) => {
            Err(Error::user(format!("the Lambda package of {} is {:.1} MB {rule}", dir.display(), size as f64 / (1024.0 * 1024.0)))
                .help("trim requirements.txt, or package the function as an image: --var lambda_package=image"))
        }
    }
}

async fn build_zip_uncached(dir: &Path, platform: &str, pyver: &str) -> Result<Vec<u8>> {
    let build = tempfile::tempdir()?;
    for f in files(dir)? {
        let name = f.to_string_lossy();
        if name == "Dockerfile" || name == "requirements.txt" {
            continue;
        }
        let to = build.path().join(&f);
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::copy(dir.join(&f), to)?;
    }
    let reqs = dir.join("requirements.txt");
    if reqs.is_file() {
        let python = std::env::var("DEPLOY_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut cmd = Command::new(&python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
        ])
        .arg(build.path())
        .args([
            "--platform",
            platform,
            "--implementation",
            "cp",
            "--python-version",
            pyver,
            "--only-binary=:all:",
            "--upgrade",
            "-r",
        ])
        .arg(&reqs);
        run(&mut cmd, "pip install", Duration::from_secs(600), None).await.map_err(|e| {
            Error::user(format!("building the Lambda package from {}: {e}", dir.display()))
                .help("pip needs PyPI (or PIP_FIND_LINKS / PIP_NO_INDEX pointing at a folder of wheels) and binary wheels for the platform")
        })?;
    }
    let root = build.path().to_path_buf();
    let unzipped: u64 = files(&root)?
        .iter()
        .filter_map(|f| std::fs::metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let bytes = tokio::task::spawn_blocking(move || zip_dir(&root))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    check_package_size(dir, bytes.len() as u64, unzipped)?;
    Ok(bytes)
}

/// A deterministic zip: sorted entries, fixed timestamps.
fn zip_dir(root: &Path) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for f in files(root)? {
        let full = root.join(&f);
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(&full)?.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            }
        };
        w.start_file(f.to_string_lossy(), opts.unix_permissions(mode))
            .map_err(|e| Error::internal(e.to_string()))?;
        w.write_all(&std::fs::read(&full)?)?;
    }
    Ok(w.finish()
        .map_err(|e| Error::internal(e.to_string()))?
        .into_inner())
}

fn docker() -> String {
    std::env::var("DEPLOY_DOCKER").unwrap_or_else(|_| "docker".into())
}

/// Asks the container engine whether it runs; answers within 10 s whatever happens.
pub async fn probe_engine() -> Result<()> {
    run(
        Command::new(docker()).args(["info", "--format", "{{.ServerVersion}}"]),
        "docker info",
        Duration::from_secs(10),
        None,
    )
    .await
    .map(|_| ())
    .map_err(no_engine)
}

fn no_engine(why: String) -> Error {
    Error::user(format!(
        "lambda_package=image needs a container engine, and none answers: {why}"
    ))
    .help(
        "build the function as a zip instead: --var lambda_package=zip (needs only Python and pip)",
    )
}

/// Builds the function's image with the local engine, pushes it to the ECR repository, and
/// returns the image URI pinned to its digest.
pub async fn build_image(
    ctx: &Ctx,
    dir: &Path,
    hash: &str,
    arch: &str,
    repo_url: &str,
) -> Result<String> {
    probe_engine().await?;
    let docker = docker();
    let platform = match arch {
        "arm64" => "linux/arm64",
        "x86_64" => "linux/amd64",
        other => {
            return Err(Error::user(format!(
                "Lambda architecture must be arm64 or x86_64, not {other:?}"
            )));
        }
    };
    let tag = &hash[..12.min(hash.len())];
    let (image, latest) = (format!("{repo_url}:{tag}"), format!("{repo_url}:latest"));
    let build_err = |e: String| {
        let from = dir.display();
        Error::user(format!("building the function image from {from}: {e}"))
    };
    let build = ["build", "--platform", platform, "-t", &image, "-t", &latest];
    let mut command = Command::new(&docker);
    command.args(build).arg(dir);
    let long = Duration::from_secs(1800);
    run(&mut command, "docker build", long, None)
        .await
        .map_err(build_err)?;
    let (user, password, registry) = ecr_login(ctx, repo_url).await?;
    let push_err = |e: String| Error::aws(format!("pushing the function image: {e}"));
    let login = ["login", "--username", &user, "--password-stdin", &registry];
    let short = Duration::from_secs(60);
    run(
        Command::new(&docker).args(login),
        "docker login",
        short,
        Some(&password),
    )
    .await
    .map_err(push_err)?;
    for t in [&image, &latest] {
        run(
            Command::new(&docker).args(["push", t]),
            "docker push",
            long,
            None,
        )
        .await
        .map_err(push_err)?;
    }
    pushed_digest(ctx, repo_url, tag).await
}

/// ECR's registry credentials: user, password, registry address.
async fn ecr_login(ctx: &Ctx, repo_url: &str) -> Result<(String, String, String)> {
    let auth = ctx
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| api_error("GetAuthorizationToken", &e))?;
    let data = auth
        .authorization_data()
        .first()
        .ok_or_else(|| Error::aws("ECR returned no authorization data"))?;
    let token = aws_smithy_types::base64::decode(data.authorization_token().unwrap_or_default())
        .map_err(|e| Error::aws(format!("unreadable ECR token: {e}")))?;
    let token = String::from_utf8_lossy(&token).to_string();
    let (user, password) = token
        .split_once(':')
        .ok_or_else(|| Error::aws("unreadable ECR token"))?;
    let registry = data
        .proxy_endpoint()
        .unwrap_or(repo_url.split('/').next().unwrap_or_default())
        .to_string();
    Ok((user.to_string(), password.to_string(), registry))
}

/// The pushed image as `repo@digest`, which Lambda takes.
async fn pushed_digest(ctx: &Ctx, repo_url: &str, tag: &str) -> Result<String> {
    let repo_name = repo_url.split_once('/').map(|(_, n)| n).unwrap_or(repo_url);
    let id = aws_sdk_ecr::types::ImageIdentifier::builder()
        .image_tag(tag)
        .build();
    let images = ctx
        .ecr
        .describe_images()
        .repository_name(repo_name)
        .image_ids(id)
        .send()
        .await
        .map_err(|e| api_error("DescribeImages", &e))?;
    let digest = images
        .image_details()
        .first()
        .and_then(|d| d.image_digest())
        .ok_or_else(|| {
            Error::aws(format!(
                "ECR does not show the pushed image {repo_url}:{tag}"
            ))
        })?;
    Ok(format!("{repo_url}@{digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_follows_content_and_names_not_caches() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.py"), "print(1)").unwrap();
        let h1 = hash_dir(d.path()).unwrap();
        std::fs::create_dir(d.path().join("__pycache__")).unwrap();
        std::fs::write(d.path().join("__pycache__/main.cpython-312.pyc"), "junk").unwrap();
        assert_eq!(hash_dir(d.path()).unwrap(), h1, "caches do not count");
        std::fs::write(d.path().join("main.py"), "print(2)").unwrap();
        assert_ne!(hash_dir(d.path()).unwrap(), h1);
    }

    #[test]
    fn zips_are_deterministic() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.py"), "b").unwrap();
        std::fs::create_dir(d.path().join("pkg")).unwrap();
        std::fs::write(d.path().join("pkg/a.py"), "a").unwrap();
        let z1 = zip_dir(d.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert_eq!(zip_dir(d.path()).unwrap(), z1);
        let names: Vec<String> = zip::ZipArchive::new(std::io::Cursor::new(z1))
            .unwrap()
            .file_names()
            .map(|n| n.unwrap().to_string())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"pkg/a.py".to_string()));
    }

    #[test]
    fn platforms() {
        assert_eq!(pip_platform("arm64").unwrap(), "manylinux2014_aarch64");
        let d = Path::new("stacks/f/function");
        assert!(check_package_size(d, MAX_ZIPPED, MAX_UNZIPPED).is_ok());
        assert!(
            check_package_size(d, MAX_ZIPPED + 1, 1)
                .unwrap_err()
                .message
                .contains("a direct upload takes at most 50 MB")
        );
        assert!(
            check_package_size(d, 1, MAX_UNZIPPED + 1)
                .unwrap_err()
                .message
                .contains("Lambda takes at most 250 MB")
        );
        assert!(pip_platform("mips").is_err());
        assert_eq!(python_version("python3.12").unwrap(), "3.12");
    }
}
