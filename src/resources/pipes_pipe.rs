//! `pipes_pipe`: an EventBridge pipe from an SQS queue to a state machine.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error, retry_propagation};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_pipes::types::{
    PipeSourceParameters, PipeSourceSqsQueueParameters, PipeState, PipeTargetInvocationType,
    PipeTargetParameters, PipeTargetStateMachineParameters, UpdatePipeSourceParameters,
    UpdatePipeSourceSqsQueueParameters,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    pub role_arn: String,
    pub source_arn: String,
    pub target_arn: String,
    #[serde(default = "ten")]
    pub batch_size: i32,
    #[serde(default)]
    pub maximum_batching_window_in_seconds: i32,
    /// FIRE_AND_FORGET or REQUEST_RESPONSE
    #[serde(default = "fire_and_forget")]
    pub invocation_type: String,
    #[serde(default)]
    pub tags: Tags,
}

fn ten() -> i32 {
    10
}
fn fire_and_forget() -> String {
    "FIRE_AND_FORGET".into()
}

pub struct Pipe;

fn target_params(a: &Attrs) -> PipeTargetParameters {
    PipeTargetParameters::builder()
        .step_function_state_machine_parameters(
            PipeTargetStateMachineParameters::builder()
                .invocation_type(PipeTargetInvocationType::from(a.invocation_type.as_str()))
                .build(),
        )
        .build()
}

/// Pipes change state asynchronously; wait (bounded) until it settles.
async fn settle(ctx: &Ctx, name: &str) -> Result<()> {
    let settled = || async {
        let d = ctx
            .pipes
            .describe_pipe()
            .name(name)
            .send()
            .await
            .map_err(|e| api_error("DescribePipe", &e))?;
        match d.current_state() {
            Some(PipeState::Creating | PipeState::Updating | PipeState::Starting) => Ok(None),
            Some(PipeState::CreateFailed | PipeState::UpdateFailed | PipeState::StartFailed) => {
                let why = d.state_reason().unwrap_or("no reason given");
                Err(Error::aws(format!("pipe {name} failed: {why}")))
            }
            _ => Ok(Some(())),
        }
    };
    let late = || Error::aws(format!("pipe {name} did not settle in time"));
    crate::aws::poll_until(ctx, 60, settled, late).await
}

#[async_trait]
impl Kind for Pipe {
    type Attrs = Attrs;
    const NAME: &'static str = "pipes_pipe";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "source_arn"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let source = PipeSourceParameters::builder()
            .sqs_queue_parameters(
                PipeSourceSqsQueueParameters::builder()
                    .batch_size(a.batch_size)
                    .maximum_batching_window_in_seconds(a.maximum_batching_window_in_seconds)
                    .build(),
            )
            .build();
        let o = retry_propagation(ctx.propagation, || {
            ctx.pipes
                .create_pipe()
                .name(&a.name)
                .role_arn(&a.role_arn)
                .source(&a.source_arn)
                .target(&a.target_arn)
                .source_parameters(source.clone())
                .target_parameters(target_params(a))
                .set_tags(Some(a.tags.clone().into_iter().collect()))
                .send()
        })
        .await;
        let o = match o {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                return Err(Error::already_exists(format!(
                    "pipe {} already exists",
                    a.name
                )));
            }
            Err(e) => return Err(api_error("CreatePipe", &e)),
        };
        // asked again only while the answer says it is still on its way
        let on_its_way = matches!(
            o.current_state(),
            None | Some(PipeState::Creating | PipeState::Updating | PipeState::Starting)
        );
        if on_its_way {
            settle(ctx, &a.name).await?;
        }
        Ok(arn_and_name(o.arn().unwrap_or_default(), &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let d = match ctx.pipes.describe_pipe().name(&a.name).send().await {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribePipe", &e)),
        };
        if matches!(d.current_state(), Some(PipeState::Deleting)) {
            return Ok(None);
        }
        let sqs = d.source_parameters().and_then(|p| p.sqs_queue_parameters());
        let live = Attrs {
            name: a.name.clone(),
            role_arn: d.role_arn().unwrap_or_default().to_string(),
            source_arn: d.source().unwrap_or_default().to_string(),
            target_arn: d.target().unwrap_or_default().to_string(),
            batch_size: sqs.and_then(|p| p.batch_size()).unwrap_or(10),
            maximum_batching_window_in_seconds: sqs
                .and_then(|p| p.maximum_batching_window_in_seconds())
                .unwrap_or(0),
            invocation_type: d
                .target_parameters()
                .and_then(|t| t.step_function_state_machine_parameters())
                .and_then(|p| p.invocation_type())
                .map(|i| i.as_str().to_string())
                .unwrap_or_else(fire_and_forget),
            tags: d
                .tags()
                .map(|m| m.clone().into_iter().collect())
                .unwrap_or_default(),
        };
        Ok(Some((
            live,
            arn_and_name(d.arn().unwrap_or_default(), &a.name),
        )))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        let arn = known
            .get("arn")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_default();
        let same = Attrs {
            tags: live.tags.clone(),
            ..want.clone()
        } == *live;
        if !same {
            let source = UpdatePipeSourceParameters::builder()
                .sqs_queue_parameters(
                    UpdatePipeSourceSqsQueueParameters::builder()
                        .batch_size(want.batch_size)
                        .maximum_batching_window_in_seconds(want.maximum_batching_window_in_seconds)
                        .build(),
                )
                .build();
            retry_propagation(ctx.propagation, || {
                ctx.pipes
                    .update_pipe()
                    .name(&want.name)
                    .role_arn(&want.role_arn)
                    .target(&want.target_arn)
                    .source_parameters(source.clone())
                    .target_parameters(target_params(want))
                    .send()
            })
            .await
            .map_err(|e| api_error("UpdatePipe", &e))?;
            settle(ctx, &want.name).await?;
        }
        sync_arn_tags!(ctx.pipes, &arn, &live.tags, &want.tags, |set: Tags| set
            .into_iter()
            .collect())
        .await?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, known: &Outputs) -> Result<Notes> {
        match ctx.pipes.delete_pipe().name(&a.name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("DeletePipe", &e)),
        }
        let gone = || async { Ok(Self::read(ctx, a, known).await?.is_none().then_some(vec![])) };
        let late = || Error::aws(format!("pipe {} is still being deleted", a.name));
        crate::aws::poll_until(ctx, 60, gone, late).await
    }
}
