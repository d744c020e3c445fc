//! `dynamodb_table`: a table with a hash key (string, number or binary).

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    Tag,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default = "pay_per_request")]
    pub billing_mode: String,
    pub hash_key: String,
    /// S, N or B
    #[serde(default = "string_type")]
    pub hash_key_type: String,
    #[serde(default)]
    pub tags: Tags,
}

fn pay_per_request() -> String {
    "PAY_PER_REQUEST".into()
}
fn string_type() -> String {
    "S".into()
}

pub struct Table;

fn tags(t: &Tags) -> Vec<Tag> {
    sdk_tags!(Tag, t)
}

async fn status(
    ctx: &Ctx,
    name: &str,
) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>> {
    match ctx.dynamodb.describe_table().table_name(name).send().await {
        Ok(o) => Ok(o.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_error("DescribeTable", &e)),
    }
}

fn table_arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "dynamodb", &format!("table/{name}"))
}

#[async_trait]
impl Kind for Table {
    type Attrs = Attrs;
    const NAME: &'static str = "dynamodb_table";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "hash_key", "hash_key_type"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(table_arn(ctx, name))
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let key = KeySchemaElement::builder()
            .attribute_name(&a.hash_key)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let def = AttributeDefinition::builder()
            .attribute_name(&a.hash_key)
            .attribute_type(ScalarAttributeType::from(a.hash_key_type.as_str()))
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let o = match ctx
            .dynamodb
            .create_table()
            .table_name(&a.name)
            .billing_mode(BillingMode::from(a.billing_mode.as_str()))
            .key_schema(key)
            .attribute_definitions(def)
            .set_tags(Some(tags(&a.tags)))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Err(Error::already_exists(format!(
                    "DynamoDB table {} already exists",
                    a.name
                )));
            }
            Err(e) => return Err(api_error("CreateTable", &e)),
        };
        let arn = o
            .table_description()
            .and_then(|t| t.table_arn())
            .unwrap_or_default()
            .to_string();
        let active = || async {
            let t = status(ctx, &a.name).await?;
            Ok(t.filter(|t| t.table_status() == Some(&TableStatus::Active))
                .map(|_| ()))
        };
        let late = || {
            Error::aws(format!(
                "table {} is still being created; run again in a minute",
                a.name
            ))
        };
        crate::aws::poll_until(ctx, 60, active, late).await?;
        Ok(arn_and_name(&arn, &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let Some(t) = status(ctx, &a.name).await? else {
            return Ok(None);
        };
        if t.table_status() == Some(&TableStatus::Deleting) {
            return Ok(None);
        }
        let arn = t.table_arn().unwrap_or_default().to_string();
        let hash = t
            .key_schema()
            .iter()
            .find(|k| k.key_type() == &KeyType::Hash)
            .map(|k| k.attribute_name().to_string())
            .unwrap_or_default();
        let hash_type = t
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == hash)
            .map(|d| d.attribute_type().as_str().to_string())
            .unwrap_or_default();
        let billing = t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_string())
            .unwrap_or_else(|| "PROVISIONED".into());
        let tl = ctx
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| api_error("ListTagsOfResource", &e))?;
        let live = Attrs {
            name: a.name.clone(),
            billing_mode: billing,
            hash_key: hash,
            hash_key_type: hash_type,
            tags: tl
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        let arn = known
            .get("arn")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| table_arn(ctx, &want.name));
        if live.billing_mode != want.billing_mode {
            ctx.dynamodb
                .update_table()
                .table_name(&want.name)
                .billing_mode(BillingMode::from(want.billing_mode.as_str()))
                .send()
                .await
                .map_err(|e| api_error("UpdateTable", &e))?;
        }
        sync_arn_tags!(ctx.dynamodb, &arn, &live.tags, &want.tags, |set| tags(&set)).await?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx.dynamodb.delete_table().table_name(&a.name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("DeleteTable", &e)),
        }
        let gone = || async { Ok(status(ctx, &a.name).await?.is_none().then_some(vec![])) };
        let late = || {
            Error::aws(format!(
                "table {} is still being deleted; run again in a minute",
                a.name
            ))
        };
        crate::aws::poll_until(ctx, 60, gone, late).await
    }
}
