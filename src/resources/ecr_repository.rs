//! `ecr_repository`: a container image repository. Destroy deletes the images in it first
//! (force) and says how many.

use super::{Kind, Notes, Outputs, Tags, s, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_ecr::types::{ImageTagMutability, Tag};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default = "mutable")]
    pub image_tag_mutability: String,
    #[serde(default)]
    pub tags: Tags,
}

fn mutable() -> String {
    "MUTABLE".into()
}

pub struct Repository;

fn tags(t: &Tags) -> Vec<Tag> {
    sdk_tags!(Tag, t)
}

fn outputs(arn: &str, url: &str, name: &str) -> Outputs {
    Outputs::from([
        ("arn".into(), s(arn)),
        ("url".into(), s(url)),
        ("name".into(), s(name)),
    ])
}

#[async_trait]
impl Kind for Repository {
    type Attrs = Attrs;
    const NAME: &'static str = "ecr_repository";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];
    const OUTPUTS: &'static [&'static str] = &["arn", "url", "name"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        match ctx
            .ecr
            .create_repository()
            .repository_name(&a.name)
            .image_tag_mutability(ImageTagMutability::from(a.image_tag_mutability.as_str()))
            .set_tags(Some(tags(&a.tags)))
            .send()
            .await
        {
            Ok(o) => {
                let r = o
                    .repository()
                    .ok_or_else(|| Error::aws("CreateRepository returned no repository"))?;
                Ok(outputs(
                    r.repository_arn().unwrap_or_default(),
                    r.repository_uri().unwrap_or_default(),
                    &a.name,
                ))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_already_exists_exception()) =>
            {
                Err(Error::already_exists(format!(
                    "ECR repository {} already exists",
                    a.name
                )))
            }
            Err(e) => Err(api_error("CreateRepository", &e)),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let o = match ctx
            .ecr
            .describe_repositories()
            .repository_names(&a.name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeRepositories", &e)),
        };
        let Some(r) = o.repositories().first() else {
            return Ok(None);
        };
        let arn = r.repository_arn().unwrap_or_default().to_string();
        let tags = listed_tags!(ctx.ecr, &arn);
        let live = Attrs {
            name: a.name.clone(),
            image_tag_mutability: r
                .image_tag_mutability()
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(mutable),
            tags,
        };
        Ok(Some((
            live,
            outputs(&arn, r.repository_uri().unwrap_or_default(), &a.name),
        )))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        if live.image_tag_mutability != want.image_tag_mutability {
            ctx.ecr
                .put_image_tag_mutability()
                .repository_name(&want.name)
                .image_tag_mutability(ImageTagMutability::from(want.image_tag_mutability.as_str()))
                .send()
                .await
                .map_err(|e| api_error("PutImageTagMutability", &e))?;
        }
        let (_, out) = Self::read(ctx, want, known)
            .await?
            .ok_or_else(|| Error::aws(format!("repository {} vanished", want.name)))?;
        let arn = out["arn"].as_str().unwrap_or_default().to_string();
        sync_arn_tags!(ctx.ecr, &arn, &live.tags, &want.tags, |set| tags(&set)).await?;
        Ok(out)
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        let images = match ctx.ecr.list_images().repository_name(&a.name).send().await {
            Ok(o) => o.image_ids().len(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("ListImages", &e)),
        };
        match ctx
            .ecr
            .delete_repository()
            .repository_name(&a.name)
            .force(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("DeleteRepository", &e)),
        }
        Ok(if images > 0 {
            vec![format!(
                "emptied the repository first: deleted {images} image(s)"
            )]
        } else {
            vec![]
        })
    }
}
