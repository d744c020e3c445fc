//! Step Functions' optimised integrations as data: which SDK call each one makes, how its errors
//! are named (the Java SDK v1's words: `DynamoDB.AmazonDynamoDBException`, `(Service:
//! AmazonDynamoDBv2; Status Code: 400; Error Code: ...)`), whether its result carries the SDK's
//! HTTP metadata, and for `.sync` what is polled until the job ends.

/// How one service's optimised integrations differ from its `aws-sdk:*` calls.
pub struct Optimised {
    /// The service as the Resource names it (`arn:aws:states:::dynamodb:putItem`).
    pub resource: &'static str,
    /// The service in the SDK models.
    pub model: &'static str,
    /// Prefix of its error names (`DynamoDB.ResourceNotFoundException`).
    pub prefix: &'static str,
    /// The Java SDK v1 client's service name in a cause, and its base exception for codes the
    /// model does not have.
    pub v1_service: &'static str,
    pub v1_base: &'static str,
    /// The headers AWS's answer carries, as `SdkHttpMetadata` names them; none: no metadata.
    pub headers: &'static [&'static str],
}

const JSON_FRONT: &[&str] = &[
    "x-amzn-RequestId",
    "connection",
    "Content-Length",
    "Date",
    "Content-Type",
];

pub const OPTIMISED: &[Optimised] = &[
    Optimised {
        resource: "dynamodb",
        model: "dynamodb",
        prefix: "DynamoDB",
        v1_service: "AmazonDynamoDBv2",
        v1_base: "AmazonDynamoDBException",
        headers: &[
            "Server",
            "Connection",
            "x-amzn-RequestId",
            "x-amz-crc32",
            "Content-Length",
            "Date",
            "Content-Type",
        ],
    },
    Optimised {
        resource: "sqs",
        model: "sqs",
        prefix: "SQS",
        v1_service: "AmazonSQS",
        v1_base: "AmazonSQSException",
        headers: JSON_FRONT,
    },
    Optimised {
        resource: "sns",
        model: "sns",
        prefix: "SNS",
        v1_service: "AmazonSNS",
        v1_base: "AmazonSNSException",
        headers: JSON_FRONT,
    },
    Optimised {
        resource: "states",
        model: "sfn",
        prefix: "StepFunctions",
        v1_service: "AWSStepFunctions",
        v1_base: "AWSStepFunctionsException",
        headers: JSON_FRONT,
    },
    Optimised {
        resource: "events",
        model: "eventbridge",
        prefix: "EventBridge",
        v1_service: "AmazonEventBridge",
        v1_base: "AmazonEventBridgeException",
        headers: &[],
    },
    Optimised {
        resource: "lambda",
        model: "lambda",
        prefix: "Lambda",
        v1_service: "AWSLambda",
        v1_base: "AWSLambdaException",
        headers: &[],
    },
    Optimised {
        resource: "athena",
        model: "athena",
        prefix: "Athena",
        v1_service: "AmazonAthena",
        v1_base: "AmazonAthenaException",
        headers: &[],
    },
    Optimised {
        resource: "batch",
        model: "batch",
        prefix: "Batch",
        v1_service: "AWSBatch",
        v1_base: "AWSBatchException",
        headers: &[],
    },
    Optimised {
        resource: "ecs",
        model: "ecs",
        prefix: "ECS",
        v1_service: "AmazonECS",
        v1_base: "AmazonECSException",
        headers: &[],
    },
    Optimised {
        resource: "glue",
        model: "glue",
        prefix: "Glue",
        v1_service: "AWSGlue",
        v1_base: "AWSGlueException",
        headers: &[],
    },
    Optimised {
        resource: "elasticmapreduce",
        model: "emr",
        prefix: "ElasticMapReduce",
        v1_service: "AmazonElasticMapReduce",
        v1_base: "AmazonElasticMapReduceException",
        headers: &[],
    },
    Optimised {
        resource: "emr-serverless",
        model: "emrserverless",
        prefix: "EMRServerless",
        v1_service: "EMRServerless",
        v1_base: "EMRServerlessException",
        headers: &[],
    },
    Optimised {
        resource: "emr-containers",
        model: "emrcontainers",
        prefix: "EMRContainers",
        v1_service: "AmazonEMRContainers",
        v1_base: "AmazonEMRContainersException",
        headers: &[],
    },
    Optimised {
        resource: "sagemaker",
        model: "sagemaker",
        prefix: "SageMaker",
        v1_service: "AmazonSageMaker",
        v1_base: "AmazonSageMakerException",
        headers: &[],
    },
    Optimised {
        resource: "codebuild",
        model: "codebuild",
        prefix: "CodeBuild",
        v1_service: "AWSCodeBuild",
        v1_base: "AWSCodeBuildException",
        headers: &[],
    },
    Optimised {
        resource: "bedrock",
        model: "bedrock",
        prefix: "Bedrock",
        v1_service: "AmazonBedrock",
        v1_base: "AmazonBedrockException",
        headers: &[],
    },
    Optimised {
        resource: "mediaconvert",
        model: "mediaconvert",
        prefix: "MediaConvert",
        v1_service: "AWSMediaConvert",
        v1_base: "AWSMediaConvertException",
        headers: &[],
    },
    Optimised {
        resource: "eks",
        model: "eks",
        prefix: "EKS",
        v1_service: "AmazonEKS",
        v1_base: "AmazonEKSException",
        headers: &[],
    },
    Optimised {
        resource: "apigateway",
        model: "apigateway",
        prefix: "ApiGateway",
        v1_service: "AmazonApiGateway",
        v1_base: "AmazonApiGatewayException",
        headers: &[],
    },
    Optimised {
        resource: "s3",
        model: "s3",
        prefix: "S3",
        v1_service: "Amazon S3",
        v1_base: "AmazonS3Exception",
        headers: &[],
    },
];

/// Operations an optimised integration makes on another model than its service's own
/// (`bedrock:invokeModel` is Bedrock Runtime's).
pub const ELSEWHERE: &[(&str, &str)] = &[("bedrock:invokeModel", "bedrockruntime")];

/// Optimised integrations named otherwise than the API action they make, with how their
/// parameters and result are renamed (`[X]`: the value in a list of one).
pub struct Renamed {
    pub name: &'static str,
    pub action: &'static str,
    pub args: &'static [(&'static str, &'static str)],
    pub result: &'static [(&'static str, &'static str)],
}

pub const RENAMED: &[Renamed] = &[
    Renamed {
        name: "elasticmapreduce:createCluster",
        action: "runJobFlow",
        args: &[],
        result: &[("JobFlowId", "ClusterId")],
    },
    Renamed {
        name: "elasticmapreduce:addStep",
        action: "addJobFlowSteps",
        args: &[("ClusterId", "JobFlowId"), ("Step", "[Steps]")],
        result: &[],
    },
    Renamed {
        name: "elasticmapreduce:terminateCluster",
        action: "terminateJobFlows",
        args: &[("ClusterId", "[JobFlowIds]")],
        result: &[],
    },
    Renamed {
        name: "elasticmapreduce:setClusterTerminationProtection",
        action: "setTerminationProtection",
        args: &[("ClusterId", "[JobFlowIds]")],
        result: &[],
    },
    Renamed {
        name: "elasticmapreduce:modifyInstanceFleetByName",
        action: "modifyInstanceFleet",
        args: &[],
        result: &[],
    },
    Renamed {
        name: "elasticmapreduce:modifyInstanceGroupByName",
        action: "modifyInstanceGroups",
        args: &[("InstanceGroup", "[InstanceGroups]")],
        result: &[],
    },
];

impl Renamed {
    /// The call's parameters as the API action takes them.
    pub fn args(&self, args: &serde_json::Value) -> serde_json::Value {
        rename(self.args, args)
    }

    /// The action's result as the integration returns it.
    pub fn result(&self, out: &serde_json::Value) -> serde_json::Value {
        rename(self.result, out)
    }
}

fn rename(pairs: &[(&str, &str)], v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for (from, to) in pairs {
            if let Some(x) = m.remove(*from) {
                match to.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                    Some(t) => m.insert(t.to_string(), serde_json::json!([x])),
                    None => m.insert(to.to_string(), x),
                };
            }
        }
    }
    v
}

pub fn renamed(name: &str) -> Option<&'static Renamed> {
    RENAMED.iter().find(|r| r.name == name)
}

/// What `.sync` polls until a job ends: the describing call, its parameters taken from the
/// starting call's result (or its parameters), where the status is, and which statuses end it.
pub struct Sync {
    pub start: &'static str,
    pub describe: &'static str,
    /// (parameter of the describing call, pointer into the start's result or `args:` + pointer
    /// into its parameters)
    pub ids: &'static [(&'static str, &'static str)],
    /// Where the job is in the describing call's result, and its status within it.
    pub job: &'static str,
    pub status: &'static str,
    pub succeeded: &'static [&'static str],
    pub failed: &'static [&'static str],
}

pub const SYNC: &[Sync] = &[
    Sync {
        start: "athena:startQueryExecution",
        describe: "getQueryExecution",
        ids: &[("QueryExecutionId", "/QueryExecutionId")],
        job: "",
        status: "/QueryExecution/Status/State",
        succeeded: &["SUCCEEDED"],
        failed: &["FAILED", "CANCELLED"],
    },
    Sync {
        start: "batch:submitJob",
        describe: "describeJobs",
        ids: &[("Jobs", "[/JobId]")],
        job: "/Jobs/0",
        status: "/Jobs/0/Status",
        succeeded: &["SUCCEEDED"],
        failed: &["FAILED"],
    },
    Sync {
        start: "ecs:runTask",
        describe: "describeTasks",
        ids: &[
            ("Tasks", "[/Tasks/0/TaskArn]"),
            ("Cluster", "args:/Cluster"),
        ],
        job: "",
        status: "/Tasks/0/LastStatus",
        succeeded: &["STOPPED"],
        failed: &[],
    },
    Sync {
        start: "glue:startJobRun",
        describe: "getJobRun",
        ids: &[("RunId", "/JobRunId"), ("JobName", "args:/JobName")],
        job: "/JobRun",
        status: "/JobRun/JobRunState",
        succeeded: &["SUCCEEDED"],
        failed: &["FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"],
    },
    Sync {
        start: "codebuild:startBuild",
        describe: "batchGetBuilds",
        ids: &[("Ids", "[/Build/Id]")],
        job: "",
        status: "/Builds/0/BuildStatus",
        succeeded: &["SUCCEEDED"],
        failed: &["FAILED", "FAULT", "STOPPED", "TIMED_OUT"],
    },
    Sync {
        start: "elasticmapreduce:createCluster",
        describe: "describeCluster",
        ids: &[("ClusterId", "/ClusterId")],
        job: "/Cluster",
        status: "/Cluster/Status/State",
        succeeded: &["WAITING", "RUNNING"],
        failed: &["TERMINATED_WITH_ERRORS", "TERMINATED"],
    },
    Sync {
        start: "elasticmapreduce:addStep",
        describe: "describeStep",
        ids: &[("StepId", "/StepIds/0"), ("ClusterId", "args:/ClusterId")],
        job: "/Step",
        status: "/Step/Status/State",
        succeeded: &["COMPLETED"],
        failed: &["CANCELLED", "FAILED", "INTERRUPTED"],
    },
    Sync {
        start: "elasticmapreduce:terminateCluster",
        describe: "describeCluster",
        ids: &[("ClusterId", "args:/ClusterId")],
        job: "/Cluster",
        status: "/Cluster/Status/State",
        succeeded: &["TERMINATED"],
        failed: &["TERMINATED_WITH_ERRORS"],
    },
    Sync {
        start: "emr-serverless:startJobRun",
        describe: "getJobRun",
        ids: &[
            ("ApplicationId", "/ApplicationId"),
            ("JobRunId", "/JobRunId"),
        ],
        job: "/JobRun",
        status: "/JobRun/State",
        succeeded: &["SUCCESS"],
        failed: &["FAILED", "CANCELLED"],
    },
    Sync {
        start: "sagemaker:createTrainingJob",
        describe: "describeTrainingJob",
        ids: &[("TrainingJobName", "args:/TrainingJobName")],
        job: "",
        status: "/TrainingJobStatus",
        succeeded: &["Completed"],
        failed: &["Failed", "Stopped"],
    },
    Sync {
        start: "sagemaker:createTransformJob",
        describe: "describeTransformJob",
        ids: &[("TransformJobName", "args:/TransformJobName")],
        job: "",
        status: "/TransformJobStatus",
        succeeded: &["Completed"],
        failed: &["Failed", "Stopped"],
    },
    Sync {
        start: "mediaconvert:createJob",
        describe: "getJob",
        ids: &[("Id", "/Job/Id")],
        job: "",
        status: "/Job/Status",
        succeeded: &["COMPLETE"],
        failed: &["ERROR", "CANCELED"],
    },
    Sync {
        start: "bedrock:createModelCustomizationJob",
        describe: "getModelCustomizationJob",
        ids: &[("JobIdentifier", "/JobArn")],
        job: "",
        status: "/Status",
        succeeded: &["Completed"],
        failed: &["Failed", "Stopped"],
    },
    Sync {
        start: "eks:createCluster",
        describe: "describeCluster",
        ids: &[("Name", "args:/Name")],
        job: "",
        status: "/Cluster/Status",
        succeeded: &["ACTIVE"],
        failed: &["FAILED"],
    },
];

pub fn optimised(resource_service: &str) -> Option<&'static Optimised> {
    OPTIMISED.iter().find(|o| o.resource == resource_service)
}

pub fn sync_of(service_action: &str) -> Option<&'static Sync> {
    SYNC.iter().find(|s| s.start == service_action)
}
