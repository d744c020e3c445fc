//! The S3 backend (`s3://bucket/prefix`), for state shared by many machines (CI runners):
//! `<prefix>/<env>/<stack>.json`, each write conditional on the ETag last read or written
//! (`If-Match`; `If-None-Match: *` for the first), so a lost update is impossible; the lock is
//! an object `<prefix>/<env>/<stack>.lock` created with `If-None-Match: *` (only one creator
//! wins), holding who took it, and deleted when the run ends. Objects are written with
//! server-side encryption requested (SSE-S3).

use super::Holder;
use crate::aws::{AwsOptions, api_error};
use crate::error::{Class, Error, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_smithy_runtime_api::client::result::SdkError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct S3Store {
    bucket: String,
    prefix: String,
    aws: AwsOptions,
    client: tokio::sync::OnceCell<Client>,
    /// key -> the ETag of the version this process last read or wrote.
    etags: Mutex<HashMap<String, String>>,
    /// How long a lock outlives its holder's last renewal.
    lease: Duration,
}

/// A precondition that did not hold: 412, or 409 when another conditional write raced ours.
fn conflict<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> bool {
    e.raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
}

impl S3Store {
    pub fn new(bucket: String, prefix: String, aws: AwsOptions, lease: Duration) -> Self {
        S3Store {
            bucket,
            prefix,
            aws,
            client: tokio::sync::OnceCell::new(),
            etags: Mutex::new(HashMap::new()),
            lease,
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = crate::aws::load_config(&self.aws, 8).await;
                crate::aws::s3_client(&config)
            })
            .await
    }

    fn key(&self, env: &str, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("{env}/{name}")
        } else {
            format!("{}/{env}/{name}", self.prefix)
        }
    }

    pub fn root_url(&self) -> String {
        super::Location::S3 {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
        }
        .to_string()
    }

    pub fn url_of(&self, stack: &str, env: &str) -> String {
        format!(
            "s3://{}/{}",
            self.bucket,
            self.key(env, &format!("{stack}.json"))
        )
    }

    pub fn lock_url(&self, stack: &str, env: &str) -> String {
        format!(
            "s3://{}/{}",
            self.bucket,
            self.key(env, &format!("{stack}.lock"))
        )
    }

    fn no_bucket(&self) -> Error {
        Error::user(format!("the state bucket {} does not exist", self.bucket)).help(format!(
            "create it once (aws s3 mb s3://{}, with versioning on to keep old states), or point --state elsewhere",
            self.bucket
        ))
    }

    /// The object's text, or None when there is none.
    async fn get(&self, key: &str) -> Result<Option<(String, Option<String>)>> {
        let out = match self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return if e.code() == Some("NoSuchBucket") {
                    Err(self.no_bucket())
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(api_error("GetObject", &e)),
        };
        let etag = out.e_tag().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::aws(format!("reading s3://{}/{key}: {e}", self.bucket)))?
            .into_bytes();
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::user("recorded state is not UTF-8 text")
                .at(format!("s3://{}/{key}", self.bucket))
        })?;
        Ok(Some((text, etag)))
    }

    pub async fn read(&self, stack: &str, env: &str) -> Result<Option<String>> {
        let key = self.key(env, &format!("{stack}.json"));
        let got = self.get(&key).await?;
        let mut etags = self.etags.lock().unwrap();
        match got {
            Some((text, etag)) => {
                match etag {
                    Some(t) => etags.insert(key, t),
                    None => etags.remove(&key),
                };
                Ok(Some(text))
            }
            None => {
                etags.remove(&key);
                Ok(None)
            }
        }
    }

    pub async fn backup(&self, stack: &str, env: &str, text: &str) -> Result<String> {
        let key = self.key(env, &format!("{stack}.json.backup"));
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(|e| api_error("PutObject", &e))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }

    pub async fn write(&self, stack: &str, env: &str, text: Option<&str>) -> Result<()> {
        let key = self.key(env, &format!("{stack}.json"));
        let known = self.etags.lock().unwrap().get(&key).cloned();
        let client = self.client().await;
        let Some(text) = text else {
            return match client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(_) => {
                    self.etags.lock().unwrap().remove(&key);
                    Ok(())
                }
                Err(e) => Err(api_error("DeleteObject", &e)),
            };
        };
        let mut put = client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(text.as_bytes().to_vec().into());
        put = match &known {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(o) => {
                let mut etags = self.etags.lock().unwrap();
                match o.e_tag() {
                    Some(t) => etags.insert(key, t.to_string()),
                    None => etags.remove(&key),
                };
                Ok(())
            }
            Err(e) if conflict(&e) => Err(Error::new(
                Class::Locked,
                format!("the state of stack `{stack}` (env `{env}`) was changed by another run since this one read it: not overwritten"),
            )
            .at(self.url_of(stack, env))
            .help("every run of a stack and env must use the same state URL (so they take the same lock); run the command again")),
            Err(e) if e.code() == Some("NoSuchBucket") => Err(self.no_bucket()),
            Err(e) => Err(api_error("PutObject", &e)),
        }
    }

    pub async fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                if e.code() == Some("NoSuchBucket") {
                    self.no_bucket()
                } else {
                    api_error("ListObjectsV2", &e)
                }
            })?;
            for o in page.contents() {
                let rest = o
                    .key()
                    .unwrap_or_default()
                    .strip_prefix(&prefix)
                    .unwrap_or_default();
                if let Some((env, file)) = rest.split_once('/') {
                    if let Some(stack) = file.strip_suffix(".json").filter(|s| !s.contains('/')) {
                        out.push((env.to_string(), stack.to_string()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ok(Ok(lock)) when taken; Ok(Err(holder)) when another run holds it. A lock whose lease
    /// ran out (its holder stopped renewing it: killed) is taken over with a write conditional
    /// on the very version read, so that of two runs taking it over only one can win.
    pub async fn try_lock(
        &self,
        stack: &str,
        env: &str,
        me: &Holder,
    ) -> Result<std::result::Result<S3Lock, Option<Holder>>> {
        let key = self.key(env, &format!("{stack}.lock"));
        let client = self.client().await;
        let mut me = me.clone();
        me.lease_secs = Some(self.lease.as_secs().max(1));
        me.renewed = Some(super::now_secs());
        let body = serde_json::to_vec(&me).unwrap_or_default();
        let put = |condition: Condition| {
            let put = client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type("application/json")
                .server_side_encryption(ServerSideEncryption::Aes256)
                .body(body.clone().into());
            match condition {
                Condition::Absent => put.if_none_match("*"),
                Condition::Is(etag) => put.if_match(etag),
            }
            .send()
        };
        let taken = |etag: Option<&str>| {
            S3Lock::held(client, &self.bucket, &key, me.clone(), etag, self.lease)
        };
        match put(Condition::Absent).await {
            Ok(o) => return Ok(Ok(taken(o.e_tag()))),
            Err(e) if conflict(&e) => {}
            Err(e) if e.code() == Some("NoSuchBucket") => return Err(self.no_bucket()),
            Err(e) => return Err(api_error("PutObject", &e)),
        }
        let Some((text, etag)) = self.get(&key).await? else {
            return Ok(Err(None)); // released meanwhile: the caller tries again
        };
        let holder: Option<Holder> = serde_json::from_str(&text).ok();
        let (Some(h), Some(etag)) = (holder.as_ref(), etag) else {
            return Ok(Err(holder));
        };
        let Some(ago) = h.expired_for() else {
            return Ok(Err(holder));
        };
        match put(Condition::Is(etag)).await {
            Ok(o) => {
                let by = h.describe();
                eprintln!(
                    "took over the lock of stack `{stack}` (env `{env}`): it was held by {by}, whose lease ran out {ago} s ago (a run that was killed)"
                );
                Ok(Ok(taken(o.e_tag())))
            }
            // another run took it over first, or its holder renewed it just now
            Err(e)
                if conflict(&e) || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(Err(holder))
            }
            Err(e) => Err(api_error("PutObject", &e)),
        }
    }

    pub async fn unlock(&self, stack: &str, env: &str) -> Result<Option<Holder>> {
        let key = self.key(env, &format!("{stack}.lock"));
        let Some((text, _)) = self.get(&key).await? else {
            return Ok(None);
        };
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| api_error("DeleteObject", &e))?;
        Ok(Some(serde_json::from_str(&text).unwrap_or(Holder {
            who: "unknown".into(),
            host: "unknown".into(),
            pid: 0,
            command: "?".into(),
            since: 0,
            lease_secs: None,
            renewed: None,
        })))
    }
}

enum Condition {
    Absent,
    Is(String),
}

/// The lock object, held until `release` deletes it: an ordinary awaited step at the end of
/// every run that took it. While held, a task renews its lease every third of it (a write
/// conditional on the version it last wrote): a run that lives holds its lock however long
/// it takes; one killed stops renewing, and the next run takes the lock over once the lease
/// ran out. A renewal that finds the lock taken over stops this run (`interrupt::request`).
/// Dropped unreleased (an early return, a panic), it is released in the background on the
/// runtime (`super::settle` waits for that before the process exits); nothing ever blocks on
/// the runtime from inside it (that lost the wakeups of every other stack's calls polled on
/// the same thread, and `up --all` waited forever).
pub struct S3Lock {
    client: Client,
    bucket: String,
    key: String,
    released: bool,
    renewing: tokio::task::JoinHandle<()>,
}

impl S3Lock {
    fn held(
        client: &Client,
        bucket: &str,
        key: &str,
        me: Holder,
        etag: Option<&str>,
        lease: Duration,
    ) -> S3Lock {
        let etag = Arc::new(Mutex::new(etag.map(str::to_string)));
        let renewing = tokio::spawn(renew(
            client.clone(),
            bucket.to_string(),
            key.to_string(),
            me,
            etag,
            lease,
        ));
        S3Lock {
            client: client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            released: false,
            renewing,
        }
    }

    pub async fn release(mut self) {
        self.released = true;
        self.renewing.abort();
        let _ = (&mut self.renewing).await;
        delete_lock(self.client.clone(), self.bucket.clone(), self.key.clone()).await;
    }
}

/// Renews the lease every third of it, for as long as the lock is held.
async fn renew(
    client: Client,
    bucket: String,
    key: String,
    mut me: Holder,
    etag: Arc<Mutex<Option<String>>>,
    lease: Duration,
) {
    let every = (lease / 3).max(Duration::from_millis(300));
    loop {
        tokio::time::sleep(every).await;
        me.renewed = Some(super::now_secs());
        let known = etag.lock().unwrap().clone();
        let mut put = client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(serde_json::to_vec(&me).unwrap_or_default().into());
        if let Some(t) = known {
            put = put.if_match(t);
        }
        match put.send().await {
            Ok(o) => *etag.lock().unwrap() = o.e_tag().map(str::to_string),
            Err(e)
                if conflict(&e) || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                crate::interrupt::request(&format!(
                    "the lock s3://{bucket}/{key} was taken over by another run (this one could not renew its lease in time)"
                ));
                return;
            }
            // a passing failure: the next renewal tries again, well within the lease
            Err(e) => tracing::warn!(
                "renewing the lock s3://{bucket}/{key}: {}",
                api_error("PutObject", &e)
            ),
        }
    }
}

async fn delete_lock(client: Client, bucket: String, key: String) {
    if let Err(e) = client
        .delete_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
    {
        eprintln!(
            "warning: could not release the lock s3://{bucket}/{key}: {}",
            api_error("DeleteObject", &e)
        );
    }
}

impl Drop for S3Lock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.renewing.abort();
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        if !super::release_in_background(delete_lock(client, bucket, key)) {
            eprintln!(
                "warning: the lock s3://{}/{} was not released: remove it with `deploy unlock`",
                self.bucket, self.key
            );
        }
    }
}
