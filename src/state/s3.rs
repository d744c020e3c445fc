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
use std::sync::Mutex;

pub struct S3Store {
    bucket: String,
    prefix: String,
    aws: AwsOptions,
    client: tokio::sync::OnceCell<Client>,
    /// key -> the ETag of the version this process last read or wrote.
    etags: Mutex<HashMap<String, String>>,
}

/// A precondition that did not hold: 412, or 409 when another conditional write raced ours.
fn conflict<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> bool {
    e.raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
}

impl S3Store {
    pub fn new(bucket: String, prefix: String, aws: AwsOptions) -> Self {
        S3Store {
            bucket,
            prefix,
            aws,
            client: tokio::sync::OnceCell::new(),
            etags: Mutex::new(HashMap::new()),
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

    /// Ok(Ok(lock)) when taken; Ok(Err(holder)) when another run holds it.
    pub async fn try_lock(
        &self,
        stack: &str,
        env: &str,
        me: &Holder,
    ) -> Result<std::result::Result<S3Lock, Option<Holder>>> {
        let key = self.key(env, &format!("{stack}.lock"));
        let body = serde_json::to_vec(me).unwrap_or_default();
        let client = self.client().await;
        let put = client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(body.into())
            .send()
            .await;
        match put {
            Ok(_) => Ok(Ok(S3Lock {
                client: client.clone(),
                bucket: self.bucket.clone(),
                key,
                released: false,
            })),
            Err(e) if conflict(&e) => {
                let holder = self
                    .get(&key)
                    .await?
                    .and_then(|(text, _)| serde_json::from_str(&text).ok());
                Ok(Err(holder))
            }
            Err(e) if e.code() == Some("NoSuchBucket") => Err(self.no_bucket()),
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
        })))
    }
}

/// The lock object, held until `release` deletes it: an ordinary awaited step at the end of
/// every run that took it. Dropped unreleased (an early return, a panic), it is released in
/// the background on the runtime (`super::settle` waits for that before the process exits);
/// nothing ever blocks on the runtime from inside it (that lost the wakeups of every other
/// stack's calls polled on the same thread, and `up --all` waited forever).
pub struct S3Lock {
    client: Client,
    bucket: String,
    key: String,
    released: bool,
}

impl S3Lock {
    pub async fn release(mut self) {
        self.released = true;
        delete_lock(self.client.clone(), self.bucket.clone(), self.key.clone()).await;
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
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        if !super::release_in_background(delete_lock(client, bucket, key)) {
            eprintln!(
                "warning: the lock s3://{}/{} was not released: remove it with `deploy unlock`",
                self.bucket, self.key
            );
        }
    }
}
