//! `sns_subscription`: a subscription to a topic (e.g. protocol `email`). An email subscription
//! stays "pending confirmation" until its owner confirms it; it is found and removed by its
//! topic, protocol and endpoint.

use super::{Kind, Notes, Outputs, s};
use crate::aws::{Ctx, api_error};
use crate::error::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
}

pub struct SnsSubscription;

async fn find(ctx: &Ctx, a: &Attrs) -> Result<Option<String>> {
    let mut token = None;
    loop {
        let page = match ctx
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&a.topic_arn)
            .set_next_token(token)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("ListSubscriptionsByTopic", &e)),
        };
        if let Some(sub) = page.subscriptions().iter().find(|s| {
            // an endpoint from a sensitive variable is recorded sealed
            let endpoint = s.endpoint().unwrap_or_default();
            s.protocol() == Some(&a.protocol)
                && (endpoint == a.endpoint || crate::secrets::same(&a.endpoint, endpoint))
        }) {
            return Ok(Some(sub.subscription_arn().unwrap_or_default().to_string()));
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(None),
        }
    }
}

#[async_trait]
impl Kind for SnsSubscription {
    type Attrs = Attrs;
    const NAME: &'static str = "sns_subscription";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["topic_arn", "protocol", "endpoint"];
    const OUTPUTS: &'static [&'static str] = &["arn"];

    fn display_name(a: &Attrs) -> String {
        format!("{}:{}", a.protocol, a.endpoint)
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let o = ctx
            .sns
            .subscribe()
            .topic_arn(&a.topic_arn)
            .protocol(&a.protocol)
            .endpoint(&a.endpoint)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| api_error("Subscribe", &e))?;
        Ok(Outputs::from([(
            "arn".into(),
            s(o.subscription_arn().unwrap_or_default()),
        )]))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        Ok(find(ctx, a)
            .await?
            .map(|arn| (a.clone(), Outputs::from([("arn".into(), s(&arn))]))))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &Attrs, known: &Outputs) -> Result<Notes> {
        let arn = match known
            .get("arn")
            .and_then(|v| v.as_str())
            .filter(|a| a.starts_with("arn:"))
        {
            Some(arn) => Some(arn.to_string()),
            None => find(ctx, a).await?,
        };
        let Some(arn) = arn.filter(|a| a.starts_with("arn:")) else {
            return Ok(vec![]);
        };
        match ctx.sns.unsubscribe().subscription_arn(&arn).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                Ok(vec![])
            }
            // A subscription still pending confirmation may refuse Unsubscribe; deleting its
            // topic (which comes after it in destroy order) removes it.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_parameter_exception()) =>
            {
                Ok(vec![format!(
                    "the subscription is pending confirmation: it goes with its topic ({})",
                    a.topic_arn
                )])
            }
            Err(e) => Err(api_error("Unsubscribe", &e)),
        }
    }
}
