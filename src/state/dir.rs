//! The folder backend: `<root>/<env>/<stack>.json`, written atomically (temp file + rename),
//! locked with an OS file lock on `<stack>.lock` beside it (released by the OS when the
//! process dies), the holder written into the lock file.

use super::Holder;
use crate::error::{Error, Result, io_at};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct DirStore {
    pub root: PathBuf,
}

impl DirStore {
    pub fn new(root: PathBuf) -> Self {
        DirStore { root }
    }

    pub fn path(&self, stack: &str, env: &str) -> PathBuf {
        self.root.join(env).join(format!("{stack}.json"))
    }

    pub fn lock_path(&self, stack: &str, env: &str) -> PathBuf {
        self.root.join(env).join(format!("{stack}.lock"))
    }

    pub fn read(&self, stack: &str, env: &str) -> Result<Option<String>> {
        let path = self.path(stack, env);
        match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                Error::user("recorded state is not UTF-8 text")
                    .at(path.display().to_string())
                    .help("restore it from a backup, or remove it")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    pub fn write(&self, stack: &str, env: &str, text: Option<&str>) -> Result<()> {
        let path = self.path(stack, env);
        let Some(text) = text else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_at(&path)(e)),
                _ => Ok(()),
            };
        };
        let dir = path.parent().unwrap();
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_at(dir))?;
        tmp.write_all(text.as_bytes()).map_err(io_at(&path))?;
        tmp.as_file().sync_all().map_err(io_at(&path))?;
        tmp.persist(&path).map_err(|e| io_at(&path)(e.error))?;
        Ok(())
    }

    pub fn backup(&self, stack: &str, env: &str, text: &str) -> Result<String> {
        let path = self.root.join(env).join(format!("{stack}.json.backup"));
        let dir = path.parent().unwrap();
        // written like the state: atomically, 0600
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_at(dir))?;
        tmp.write_all(text.as_bytes()).map_err(io_at(&path))?;
        tmp.as_file().sync_all().map_err(io_at(&path))?;
        tmp.persist(&path).map_err(|e| io_at(&path)(e.error))?;
        Ok(path.display().to_string())
    }

    pub fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let Ok(envs) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for env in envs.flatten() {
            if !env.path().is_dir() {
                continue;
            }
            let env_name = env.file_name().to_string_lossy().to_string();
            for f in std::fs::read_dir(env.path())
                .map_err(io_at(&env.path()))?
                .flatten()
            {
                let name = f.file_name().to_string_lossy().to_string();
                if let Some(stack) = name.strip_suffix(".json") {
                    out.push((env_name.clone(), stack.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Ok(Ok(file)) when taken; Ok(Err(holder)) when another run holds it.
    pub fn try_lock(
        &self,
        stack: &str,
        env: &str,
        me: &Holder,
    ) -> Result<std::result::Result<File, Option<Holder>>> {
        let path = self.lock_path(stack, env);
        std::fs::create_dir_all(path.parent().unwrap()).map_err(io_at(path.parent().unwrap()))?;
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        // the holder's host and pid are nobody else's business: 0600 like the state beside it
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io_at(&path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // a lock file an older version made with the umask's mode
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
        match file.try_lock() {
            Ok(()) => {
                let text = serde_json::to_string(me).unwrap_or_default();
                file.set_len(0)
                    .and_then(|_| file.rewind())
                    .and_then(|_| file.write_all(text.as_bytes()))
                    .map_err(io_at(&path))?;
                Ok(Ok(file))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Err(serde_json::from_str(&text).ok()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::new(
                crate::error::Class::Locked,
                format!("cannot lock stack `{stack}` (env `{env}`): {e}"),
            )
            .at(path.display().to_string())),
        }
    }

    /// A file lock dies with its process: there is never a stale one to remove. Says whose
    /// lock is held right now, if any, without breaking it.
    pub fn unlock(&self, stack: &str, env: &str) -> Result<Option<Holder>> {
        let path = self.lock_path(stack, env);
        let me = Holder::me("unlock");
        if !path.exists() {
            return Ok(None);
        }
        match self.try_lock(stack, env, &me)? {
            Ok(file) => {
                drop(file);
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
            Err(holder) => Err(Error::new(
                crate::error::Class::Locked,
                format!(
                    "stack `{stack}` (env `{env}`) is locked by a running process{}: a folder lock is released when its process ends",
                    holder.map(|h| format!(" ({})", h.describe())).unwrap_or_default()
                ),
            )
            .help("stop that run (Ctrl-C) or wait for it")),
        }
    }
}
