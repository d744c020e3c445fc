//! `s3_bucket`: a bucket. Names are global, so stacks derive them from a prefix, the account,
//! the region and the env (`profile-pictures-${account_id}-${region}`), checked here against
//! S3's naming rules. Destroy empties the bucket first (every object version and delete marker)
//! and says how many objects it removed.

use super::{Kind, Notes, Outputs, Tags, s};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, Tag, Tagging,
};

pub type Attrs = super::NameAndTags;

pub struct S3Bucket;

/// S3's bucket naming rules, with the reason when a name breaks one.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!(
            "bucket name {name:?} is {} characters long; S3 allows 3 to 63 (use a shorter prefix or env name)",
            name.len()
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!(
            "bucket name {name:?} may only hold lowercase letters, digits, dots and hyphens"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) || name.contains("..") {
        return Err(format!(
            "bucket name {name:?} must start and end with a letter or digit, without '..'"
        ));
    }
    Ok(())
}

fn outputs(ctx: &Ctx, name: &str) -> Outputs {
    Outputs::from([
        (
            "arn".into(),
            s(&format!("arn:{}:s3:::{name}", ctx.partition)),
        ),
        ("name".into(), s(name)),
    ])
}

async fn put_tags(ctx: &Ctx, a: &Attrs) -> Result<()> {
    if a.tags.is_empty() {
        ctx.s3
            .delete_bucket_tagging()
            .bucket(&a.name)
            .send()
            .await
            .map_err(|e| api_error("DeleteBucketTagging", &e))?;
        return Ok(());
    }
    let tags = sdk_tags!(Tag, a.tags);
    let tagging = Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .expect("tag set given");
    ctx.s3
        .put_bucket_tagging()
        .bucket(&a.name)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| api_error("PutBucketTagging", &e))?;
    Ok(())
}

async fn delete_batch(ctx: &Ctx, bucket: &str, ids: Vec<ObjectIdentifier>) -> Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let n = ids.len();
    let del = Delete::builder()
        .set_objects(Some(ids))
        .quiet(true)
        .build()
        .map_err(|e| Error::internal(e.to_string()))?;
    ctx.s3
        .delete_objects()
        .bucket(bucket)
        .delete(del)
        .send()
        .await
        .map_err(|e| api_error("DeleteObjects", &e))?;
    Ok(n)
}

/// Deletes every object version, delete marker and object; returns how many were removed, or
/// None when the bucket does not exist. Versions and objects are listed at once (one round
/// trip for an empty bucket): an object the version listing holds (an unversioned one, as
/// version "null") is deleted once.
pub async fn empty(ctx: &Ctx, bucket: &str) -> Result<Option<usize>> {
    let mut removed = 0;
    loop {
        let (versions, objects) = tokio::join!(
            ctx.s3.list_object_versions().bucket(bucket).send(),
            ctx.s3.list_objects_v2().bucket(bucket).send()
        );
        let gone = |code: Option<&str>| code == Some("NoSuchBucket");
        let versions = match versions {
            Err(e) if gone(e.code()) => return Ok(None),
            v => v.map_err(|e| api_error("ListObjectVersions", &e))?,
        };
        let objects = match objects {
            Err(e) if gone(e.code()) => return Ok(None),
            o => o.map_err(|e| api_error("ListObjectsV2", &e))?,
        };
        let id = |key: Option<&str>, version: Option<&str>| {
            ObjectIdentifier::builder()
                .key(key.unwrap_or_default())
                .set_version_id(version.map(str::to_string))
                .build()
                .expect("key set")
        };
        let mut ids: Vec<ObjectIdentifier> = versions
            .versions()
            .iter()
            .map(|v| id(v.key(), v.version_id()))
            .chain(
                versions
                    .delete_markers()
                    .iter()
                    .map(|m| id(m.key(), m.version_id())),
            )
            .collect();
        let versioned: std::collections::HashSet<String> =
            ids.iter().map(|i| i.key().to_string()).collect();
        let unlisted = objects
            .contents()
            .iter()
            .filter(|o| !versioned.contains(o.key().unwrap_or_default()));
        ids.extend(unlisted.map(|o| id(o.key(), None)).collect::<Vec<_>>());
        if ids.is_empty() {
            return Ok(Some(removed));
        }
        removed += delete_batch(ctx, bucket, ids).await?;
    }
}

#[async_trait]
impl Kind for S3Bucket {
    type Attrs = Attrs;
    const NAME: &'static str = "s3_bucket";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(format!("arn:{}:s3:::{name}", ctx.partition))
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        check_name(&a.name).map_err(Error::user)?;
        let mut req = ctx.s3.create_bucket().bucket(&a.name);
        if ctx.region != "us-east-1" {
            let conf = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.region.as_str()))
                .build();
            req = req.create_bucket_configuration(conf);
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
            {
                return Err(Error::already_exists(format!(
                    "S3 bucket {} already exists",
                    a.name
                )));
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_exists()) =>
            {
                return Err(Error::aws(format!("S3 bucket name {} is taken by another AWS account", a.name))
                    .help("bucket names are global: deploy into another --env, or change the bucket's name prefix"));
            }
            Err(e) => return Err(api_error("CreateBucket", &e)),
        }
        put_tags(ctx, a).await?;
        Ok(outputs(ctx, &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        match ctx.s3.head_bucket().bucket(&a.name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.code() == Some("NotFound") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("HeadBucket", &e)),
        }
        let tags = match ctx.s3.get_bucket_tagging().bucket(&a.name).send().await {
            Ok(t) => t
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            Err(e) if e.code() == Some("NoSuchTagSet") => Tags::new(),
            Err(e) => return Err(api_error("GetBucketTagging", &e)),
        };
        Ok(Some((
            Attrs {
                name: a.name.clone(),
                tags,
            },
            outputs(ctx, &a.name),
        )))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        put_tags(ctx, want).await?;
        Ok(outputs(ctx, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        // a bucket already gone answers the listing NoSuchBucket: nothing is asked before it
        let Some(removed) = empty(ctx, &a.name).await? else {
            return Ok(vec![]);
        };
        match ctx.s3.delete_bucket().bucket(&a.name).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchBucket") => {}
            Err(e) => return Err(api_error("DeleteBucket", &e)),
        }
        Ok(if removed > 0 {
            vec![format!(
                "emptied the bucket first: deleted {removed} object(s)"
            )]
        } else {
            vec![]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn naming_rules() {
        assert!(check_name("source-123456789012-us-east-1").is_ok());
        assert!(check_name("pr-1-profile-pictures-123456789012-us-east-1").is_ok());
        assert!(check_name(&"a".repeat(64)).unwrap_err().contains("3 to 63"));
        assert!(check_name("Upper").is_err());
        assert!(check_name("-x-").is_err());
        assert!(check_name("a..b").is_err());
    }
}
