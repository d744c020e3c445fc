//! `s3_bucket_notification`: a bucket's event notification to an SQS queue (the bucket's whole
//! notification configuration is owned by this resource).

use super::{Kind, Notes, Outputs, s};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub bucket: String,
    pub queue_arn: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub filter_prefix: String,
}

pub struct BucketNotification;

fn config(a: &Attrs) -> Result<NotificationConfiguration> {
    let mut q = QueueConfiguration::builder()
        .queue_arn(&a.queue_arn)
        .set_events(Some(
            a.events.iter().map(|e| Event::from(e.as_str())).collect(),
        ));
    if !a.filter_prefix.is_empty() {
        let rule = FilterRule::builder()
            .name(FilterRuleName::Prefix)
            .value(&a.filter_prefix)
            .build();
        q = q.filter(
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().filter_rules(rule).build())
                .build(),
        );
    }
    let q = q.build().map_err(|e| Error::internal(e.to_string()))?;
    Ok(NotificationConfiguration::builder()
        .queue_configurations(q)
        .build())
}

fn outputs(a: &Attrs) -> Outputs {
    Outputs::from([("bucket".into(), s(&a.bucket))])
}

#[async_trait]
impl Kind for BucketNotification {
    type Attrs = Attrs;
    const NAME: &'static str = "s3_bucket_notification";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["bucket"];
    const OUTPUTS: &'static [&'static str] = &["bucket"];

    fn display_name(a: &Attrs) -> String {
        format!(
            "{} -> {}",
            a.bucket,
            a.queue_arn.rsplit(':').next().unwrap_or_default()
        )
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        ctx.s3
            .put_bucket_notification_configuration()
            .bucket(&a.bucket)
            .notification_configuration(config(a)?)
            .send()
            .await
            .map_err(|e| api_error("PutBucketNotificationConfiguration", &e))?;
        Ok(outputs(a))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let c = match ctx
            .s3
            .get_bucket_notification_configuration()
            .bucket(&a.bucket)
            .send()
            .await
        {
            Ok(c) => c,
            Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
            // A bucket with no notification yet: AWS answers an empty <NotificationConfiguration/>,
            // moto a <GetBucketNotificationResponse/> the SDK cannot read. Either way, none.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                return Ok(None);
            }
            Err(e) => return Err(api_error("GetBucketNotificationConfiguration", &e)),
        };
        let Some(q) = c.queue_configurations().first() else {
            return Ok(None);
        };
        let prefix = q
            .filter()
            .and_then(|f| f.key())
            .and_then(|k| {
                k.filter_rules().iter().find(|r| {
                    r.name()
                        .map(|n| n.as_str().eq_ignore_ascii_case("prefix"))
                        .unwrap_or(false)
                })
            })
            .and_then(|r| r.value())
            .unwrap_or_default();
        let live = Attrs {
            bucket: a.bucket.clone(),
            queue_arn: q.queue_arn().to_string(),
            events: q.events().iter().map(|e| e.as_str().to_string()).collect(),
            filter_prefix: prefix.to_string(),
        };
        Ok(Some((live, outputs(a))))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .s3
            .put_bucket_notification_configuration()
            .bucket(&a.bucket)
            .notification_configuration(NotificationConfiguration::builder().build())
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e) if e.code() == Some("NoSuchBucket") => Ok(vec![]),
            Err(e) => Err(api_error("PutBucketNotificationConfiguration", &e)),
        }
    }
}
