//! `events_connection`: an EventBridge connection (used by HTTP tasks). Basic auth only for now;
//! the password cannot be read back, so drift on it is not detected.

use super::{Kind, Notes, Outputs, s};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{
    ConnectionAuthorizationType, CreateConnectionAuthRequestParameters,
    CreateConnectionBasicAuthRequestParameters, UpdateConnectionAuthRequestParameters,
    UpdateConnectionBasicAuthRequestParameters,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Basic {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Only `BASIC` is supported.
    #[serde(default = "basic")]
    pub authorization_type: String,
    pub basic: Basic,
}

fn basic() -> String {
    "BASIC".into()
}

pub struct EventsConnection;

fn outputs(arn: &str, secret_arn: &str, name: &str) -> Outputs {
    Outputs::from([
        ("arn".into(), s(arn)),
        ("secret_arn".into(), s(secret_arn)),
        ("name".into(), s(name)),
    ])
}

fn check_auth(a: &Attrs) -> Result<()> {
    if a.authorization_type != "BASIC" {
        return Err(Error::user(format!(
            "events_connection {}: authorization_type {:?} is not supported (only BASIC)",
            a.name, a.authorization_type
        )));
    }
    Ok(())
}

#[async_trait]
impl Kind for EventsConnection {
    type Attrs = Attrs;
    const NAME: &'static str = "events_connection";
    const TAGGABLE: bool = false;
    const OWNER: super::Owner = super::Owner::Description;
    const SENSITIVE: &'static [&'static str] = &["/basic/password"];
    const REPLACE_ON: &'static [&'static str] = &["name", "authorization_type"];
    const OUTPUTS: &'static [&'static str] = &["arn", "secret_arn", "name"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        check_auth(a)?;
        let basic = CreateConnectionBasicAuthRequestParameters::builder()
            .username(&a.basic.username)
            .password(&a.basic.password)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        // Sent once, then looked for after a lost answer: a blind retry would meet the first
        // one (or, where a service replaces it, orphan the secret it made).
        let once = aws_sdk_eventbridge::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled());
        crate::aws::create_once(
            crate::aws::Backoff {
                attempts: 5,
                ..ctx.propagation
            },
            || async {
                ctx.events
                    .create_connection()
                    .name(&a.name)
                    .description(&a.description)
                    .authorization_type(ConnectionAuthorizationType::Basic)
                    .auth_parameters(
                        CreateConnectionAuthRequestParameters::builder()
                            .basic_auth_parameters(basic.clone())
                            .build(),
                    )
                    .customize()
                    .config_override(once.clone())
                    .send()
                    .await
                    .map(|_| ())
            },
            || exists(ctx, &a.name),
            |e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception())
                {
                    Error::already_exists(format!(
                        "EventBridge connection {} already exists",
                        a.name
                    ))
                } else {
                    api_error("CreateConnection", &e)
                }
            },
        )
        .await
        .map(|_| ())?;
        // The secret's ARN is only given by DescribeConnection.
        match Self::read(ctx, a, &Outputs::new()).await? {
            Some((_, o)) => Ok(o),
            None => Err(Error::aws(format!(
                "connection {} vanished right after it was created",
                a.name
            ))),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let c = match ctx.events.describe_connection().name(&a.name).send().await {
            Ok(c) => c,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeConnection", &e)),
        };
        let username = c
            .auth_parameters()
            .and_then(|p| p.basic_auth_parameters())
            .and_then(|b| b.username())
            .unwrap_or_default()
            .to_string();
        let live = Attrs {
            name: c.name().unwrap_or_default().to_string(),
            description: c.description().unwrap_or_default().to_string(),
            authorization_type: c
                .authorization_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(basic),
            basic: Basic {
                username,
                password: a.basic.password.clone(),
            },
        };
        let o = outputs(
            c.connection_arn().unwrap_or_default(),
            c.secret_arn().unwrap_or_default(),
            &a.name,
        );
        Ok(Some((live, o)))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        check_auth(want)?;
        let basic = UpdateConnectionBasicAuthRequestParameters::builder()
            .username(&want.basic.username)
            .password(&want.basic.password)
            .build();
        ctx.events
            .update_connection()
            .name(&want.name)
            .description(&want.description)
            .authorization_type(ConnectionAuthorizationType::Basic)
            .auth_parameters(
                UpdateConnectionAuthRequestParameters::builder()
                    .basic_auth_parameters(basic)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api_error("UpdateConnection", &e))?;
        match Self::read(ctx, want, &Outputs::new()).await? {
            Some((_, o)) => Ok(o),
            None => Err(Error::aws(format!(
                "connection {} vanished while being updated",
                want.name
            ))),
        }
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx.events.delete_connection().name(&a.name).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteConnection", &e)),
        }
    }
}

/// Whether the connection exists (after a create whose answer was lost).
async fn exists(ctx: &Ctx, name: &str) -> Result<Option<()>> {
    match ctx.events.describe_connection().name(name).send().await {
        Ok(_) => Ok(Some(())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_error("DescribeConnection", &e)),
    }
}
