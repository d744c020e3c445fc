//! The other three exercises end to end against moto: up, every listed resource and property
//! checked through the SDK, a second up with no mutating call, an update, destroy, nothing left.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::*;

const ACCOUNT: &str = "123456789012";

fn tag_pairs<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    it.map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn deployed_definition(c: &Clients, name: &str) -> Value {
    c.block_on(async {
        let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{name}");
        let d = c
            .sfn
            .describe_state_machine()
            .state_machine_arn(arn)
            .send()
            .await
            .unwrap();
        serde_json::from_str(d.definition()).unwrap()
    })
}

#[test]
fn create_new_user_needs_an_email() {
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        state.path(),
        &format!("http://127.0.0.1:{}", free_port()),
    )
    .run(&["up", "create-new-user", "--yes"])
    .code(2);
    assert!(
        out.stderr
            .contains("stack `create-new-user` needs variable `email`"),
        "{out:?}"
    );
}

#[test]
fn create_new_user_lifecycle() {
    const STACK: &str = "create-new-user";
    let w = World::new();
    let (moto, c) = (&w.moto, &w.c);
    let deploy = || w.deploy();

    deploy()
        .run(&["up", STACK, "--var", "email=approver@example.com", "--yes"])
        .success();
    let topic_arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:create-new-user");
    c.block_on(async {
        for g in ["developers-group", "admins-group"] {
            c.iam.get_group().group_name(g).send().await.unwrap();
        }
        let tags = c
            .sns
            .list_tags_for_resource()
            .resource_arn(&topic_arn)
            .send()
            .await
            .unwrap();
        assert_tags(
            tag_pairs(tags.tags().iter().map(|t| (t.key(), t.value()))),
            STACK,
            "default",
        );
        let subs = c
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .unwrap();
        let subs: Vec<(&str, &str)> = subs
            .subscriptions()
            .iter()
            .map(|s| (s.protocol().unwrap(), s.endpoint().unwrap()))
            .collect();
        assert_eq!(subs, vec![("email", "approver@example.com")]);
    });
    let doc = role_policy(
        &c,
        "sfn-create-new-user",
        "states.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([
            {"Sid": "SNSPublish", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
            {"Sid": "CreateUsers", "Effect": "Allow", "Action": "iam:CreateUser", "Resource": format!("arn:aws:iam::{ACCOUNT}:user/*")},
            {"Sid": "AddUsersToTheTwoGroups", "Effect": "Allow", "Action": "iam:AddUserToGroup",
             "Resource": [format!("arn:aws:iam::{ACCOUNT}:group/admins-group"), format!("arn:aws:iam::{ACCOUNT}:group/developers-group")]}
        ])
    );
    assert_eq!(
        deployed_definition(&c, "create-new-user"),
        published_definition(
            STACK,
            "jsonata",
            &[
                ("TOPIC_ARN", &topic_arn),
                ("ADMIN_GROUP_NAME", "admins-group"),
                ("DEVELOP_GROUP_NAME", "developers-group")
            ]
        )
    );

    // the approver's address is a person's: never in state or a plan; state and lock 0600
    let recorded = w.state.path().join("default/create-new-user.json");
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(!text.contains("approver@example.com"), "{text}");
    #[cfg(unix)]
    for f in [
        recorded,
        w.state.path().join("default/create-new-user.lock"),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let plan = deploy()
        .run(&["plan", STACK, "--var", "email=boss@example.com"])
        .success();
    assert!(!plan.stdout.contains("example.com"), "{plan:?}");
    assert!(plan.stdout.contains("email:(sensitive)"), "{plan:?}");

    moto.start_recording();
    let out = deploy()
        .run(&["up", STACK, "--var", "email=approver@example.com", "--yes"])
        .success();
    assert!(
        out.stdout.contains("No changes: 8 resources up to date."),
        "{out:?}"
    );
    assert_eq!(mutating_calls(&moto), Vec::<String>::new());

    // a new approver: the subscription is replaced, nothing else changes
    moto.start_recording();
    let out = deploy()
        .run(&["up", STACK, "--var", "email=boss@example.com", "--yes"])
        .success();
    assert!(out.stdout.contains("1 to replace"), "{out:?}");
    assert_eq!(mutating_calls(&moto), vec!["Unsubscribe", "Subscribe"]);

    // as the workflow would: a user created and put in a group; destroy must still succeed
    c.block_on(async {
        c.iam
            .create_user()
            .user_name("john-doe")
            .send()
            .await
            .unwrap();
        c.iam
            .add_user_to_group()
            .group_name("admins-group")
            .user_name("john-doe")
            .send()
            .await
            .unwrap();
    });
    let out = deploy().run(&["destroy", STACK, "--yes"]).success();
    assert!(
        out.stderr
            .contains("removed 1 user(s) from the group first (kept the users): john-doe"),
        "{out:?}"
    );
    c.block_on(async {
        c.iam
            .delete_user()
            .user_name("john-doe")
            .send()
            .await
            .unwrap()
    });
    nothing_left(&c, moto.port);
}

#[test]
fn bucket_replication_lifecycle() {
    const STACK: &str = "bucket-replication";
    let w = World::with_project_copy();
    let (moto, c, project) = (&w.moto, &w.c, w.project.as_path());
    let deploy = || w.deploy();

    deploy().run(&["up", STACK, "--yes"]).success();
    let (src, dst) = (
        format!("source-{ACCOUNT}-us-east-1"),
        format!("destination-{ACCOUNT}-us-east-1"),
    );
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/datasync-bucket-replication");
    let task_arn = c.block_on(async {
        for b in [&src, &dst] {
            let tags = c.s3.get_bucket_tagging().bucket(b).send().await.unwrap();
            assert_tags(
                tag_pairs(tags.tag_set().iter().map(|t| (t.key(), t.value()))),
                STACK,
                "default",
            );
        }
        let locs = c.datasync.list_locations().send().await.unwrap();
        let mut uris: Vec<&str> = locs
            .locations()
            .iter()
            .map(|l| l.location_uri().unwrap().trim_end_matches('/'))
            .collect();
        uris.sort();
        assert_eq!(uris, vec![format!("s3://{dst}"), format!("s3://{src}")]);
        for l in locs.locations() {
            let d = c
                .datasync
                .describe_location_s3()
                .location_arn(l.location_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(d.s3_config().unwrap().bucket_access_role_arn(), role_arn);
        }
        let tasks = c.datasync.list_tasks().send().await.unwrap();
        assert_eq!(tasks.tasks().len(), 1);
        let t = c
            .datasync
            .describe_task()
            .task_arn(tasks.tasks()[0].task_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(t.name(), Some("bucket-replication"));
        let o = t.options().unwrap();
        assert_eq!(
            (
                o.posix_permissions().unwrap().as_str(),
                o.uid().unwrap().as_str(),
                o.gid().unwrap().as_str()
            ),
            ("NONE", "NONE", "NONE")
        );
        let src_loc = c
            .datasync
            .describe_location_s3()
            .location_arn(t.source_location_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            src_loc.location_uri().unwrap().trim_end_matches('/'),
            format!("s3://{src}")
        );
        t.task_arn().unwrap().to_string()
    });
    let doc = role_policy(
        &c,
        "datasync-bucket-replication",
        "datasync.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([{"Sid": "BucketAccess", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:Put*", "s3:DeleteObject"],
                "Resource": [format!("arn:aws:s3:::{src}"), format!("arn:aws:s3:::{src}/*"), format!("arn:aws:s3:::{dst}"), format!("arn:aws:s3:::{dst}/*")]}])
    );
    let doc = role_policy(
        &c,
        "sfn-bucket-replication",
        "states.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([
            {"Sid": "StartTheTask", "Effect": "Allow", "Action": "datasync:StartTaskExecution", "Resource": task_arn},
            {"Sid": "FollowItsExecutions", "Effect": "Allow", "Action": "datasync:DescribeTaskExecution", "Resource": format!("{task_arn}/execution/*")}
        ])
    );
    assert_eq!(
        deployed_definition(&c, "bucket-replication"),
        published_definition(STACK, "jsonata", &[("TASK_ARN", &task_arn)])
    );

    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(
        out.stdout.contains("No changes: 12 resources up to date."),
        "{out:?}"
    );
    assert_eq!(mutating_calls(&moto), Vec::<String>::new());

    // an update: poll every 5 s instead of 10 s
    let tpl = project.join("templates/bucket-replication/jsonata.json");
    std::fs::write(
        &tpl,
        std::fs::read_to_string(&tpl)
            .unwrap()
            .replace("\"Seconds\": 10", "\"Seconds\": 5"),
    )
    .unwrap();
    moto.start_recording();
    deploy().run(&["up", STACK, "--yes"]).success();
    assert_eq!(mutating_calls(&moto), vec!["UpdateStateMachine"]);
    assert_eq!(
        deployed_definition(&c, "bucket-replication")["States"]["Wait 10s"]["Seconds"],
        5
    );

    // buckets with objects in them do not block teardown
    c.block_on(async {
        for (b, k) in [(&src, "a.txt"), (&src, "dir/b.txt"), (&dst, "a.txt")] {
            c.s3.put_object()
                .bucket(b)
                .key(k)
                .body(b"x".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    });
    let out = deploy().run(&["destroy", STACK, "--yes"]).success();
    assert!(
        out.stderr
            .contains("source: emptied the bucket first: deleted 2 object(s)"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("destination: emptied the bucket first: deleted 1 object(s)"),
        "{out:?}"
    );
    nothing_left(&c, moto.port);
}

fn check_resize_image(c: &Clients, lang: &str) {
    const STACK: &str = "resize-image";
    let bucket = format!("profile-pictures-{ACCOUNT}-us-east-1");
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let queue_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:profile-pictures");
    let function_arn =
        format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize-profile-picture");
    let table_arn = c.block_on(async {
        // S3 -> SQS
        let n = c.s3.get_bucket_notification_configuration().bucket(&bucket).send().await.unwrap();
        let q = &n.queue_configurations()[0];
        assert_eq!(q.queue_arn(), queue_arn);
        assert_eq!(q.events().iter().map(|e| e.as_str()).collect::<Vec<_>>(), vec!["s3:ObjectCreated:*"]);
        let rule = &q.filter().unwrap().key().unwrap().filter_rules()[0];
        assert_eq!(rule.value(), Some("uploaded/"));
        let url = c.sqs.get_queue_url().queue_name("profile-pictures").send().await.unwrap().queue_url().unwrap().to_string();
        let attrs = c
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
            .send()
            .await
            .unwrap();
        let policy: Value =
            serde_json::from_str(attrs.attributes().unwrap().get(&aws_sdk_sqs::types::QueueAttributeName::Policy).unwrap()).unwrap();
        assert_eq!(policy["Id"], "AllowS3Notification");
        assert_eq!(
            policy["Statement"],
            json!([{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": ["SQS:SendMessage"], "Resource": queue_arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}}}])
        );
        // DynamoDB
        let t = c.dynamodb.describe_table().table_name("user").send().await.unwrap();
        let t = t.table().unwrap();
        assert_eq!(t.billing_mode_summary().unwrap().billing_mode().unwrap().as_str(), "PAY_PER_REQUEST");
        assert_eq!(t.key_schema()[0].attribute_name(), "userId");
        assert_eq!(t.attribute_definitions()[0].attribute_type().as_str(), "S");
        // ECR, log group, function
        let r = c.ecr.describe_repositories().repository_names("resize-profile-picture").send().await.unwrap();
        assert_eq!(r.repositories()[0].image_tag_mutability().unwrap().as_str(), "MUTABLE");
        let g = c.logs.describe_log_groups().log_group_name_prefix("/aws/lambda/resize-profile-picture").send().await.unwrap();
        assert_eq!(g.log_groups().len(), 1);
        let f = c.lambda.get_function().function_name("resize-profile-picture").send().await.unwrap();
        let fc = f.configuration().unwrap();
        assert_eq!(fc.package_type().unwrap().as_str(), "Zip");
        assert_eq!(fc.architectures()[0].as_str(), "arm64");
        assert_eq!(fc.timeout(), Some(10));
        assert_eq!(fc.runtime().unwrap().as_str(), "python3.12");
        assert_eq!(fc.handler(), Some("main.lambda_handler"));
        assert_eq!(fc.environment().unwrap().variables().unwrap().get("BUCKET_NAME"), Some(&bucket));
        assert_tags(f.tags().unwrap().clone(), STACK, "default");
        // the pipe
        let p = c.pipes.describe_pipe().name("trigger-resize-profile-picture-sfn").send().await.unwrap();
        assert_eq!(p.source(), Some(queue_arn.as_str()));
        assert_eq!(p.target(), Some(format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:resize-profile-picture").as_str()));
        let sqs = p.source_parameters().unwrap().sqs_queue_parameters().unwrap();
        assert_eq!((sqs.batch_size(), sqs.maximum_batching_window_in_seconds()), (Some(5), Some(5)));
        let inv = p.target_parameters().unwrap().step_function_state_machine_parameters().unwrap().invocation_type().unwrap();
        assert_eq!(inv.as_str(), "FIRE_AND_FORGET");
        t.table_arn().unwrap().to_string()
    });
    let doc = role_policy(
        c,
        "lambda-resize-profile-picture",
        "lambda.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([{"Sid": "S3Actions", "Effect": "Allow", "Action": ["s3:List*", "s3:Get*", "s3:Put*"], "Resource": [bucket_arn, format!("{bucket_arn}/*")]},
               {"Sid": "CloudWatchActions", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/resize-profile-picture:*")}])
    );
    let doc = role_policy(
        c,
        "sfn-resize-profile-picture",
        "states.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([{"Sid": "S3Actions", "Effect": "Allow", "Action": ["s3:List*", "s3:Get*", "s3:Put*", "s3:Delete*"], "Resource": [bucket_arn, format!("{bucket_arn}/*")]},
               {"Sid": "LambdaActions", "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [function_arn, format!("{function_arn}*")]},
               {"Sid": "DynamoDBActions", "Effect": "Allow", "Action": ["dynamodb:UpdateItem"], "Resource": table_arn}])
    );
    let sm_arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:resize-profile-picture");
    let doc = role_policy(
        c,
        "pipe-resize-profile-picture",
        "pipes.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"],
        json!([{"Sid": "SqsAccess", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], "Resource": queue_arn},
               {"Sid": "StepFunctionsAccess", "Effect": "Allow", "Action": ["states:StartExecution", "states:StartSyncExecution"], "Resource": sm_arn}])
    );
    let deployed = deployed_definition(c, "resize-profile-picture");
    assert_eq!(
        deployed,
        published_definition(
            "resize-image",
            lang,
            &[
                ("LAMBDA_NAME", "resize-profile-picture"),
                ("DYNAMODB_TABLE_NAME", "user")
            ]
        )
    );
}

#[test]
fn resize_image_lifecycle() {
    require_wheelhouse();
    const STACK: &str = "resize-image";
    let w = World::with_project_copy();
    let (moto, c, project) = (&w.moto, &w.c, w.project.as_path());
    let deploy = || w.deploy();

    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("Plan: 19 to create"), "{out:?}");
    check_resize_image(&c, "jsonata");
    let cached = || {
        std::fs::read_dir(project.join(".deploy/cache/lambda"))
            .unwrap()
            .count()
    };
    assert_eq!(cached(), 1, "the package is cached by content hash");

    // The S3 -> SQS notification works: an upload under uploaded/ arrives on the queue.
    let bucket = format!("profile-pictures-{ACCOUNT}-us-east-1");
    c.block_on(async {
        let url = c
            .sqs
            .get_queue_url()
            .queue_name("profile-pictures")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        c.s3.put_object()
            .bucket(&bucket)
            .key("elsewhere/jane.png")
            .body(b"png".to_vec().into())
            .send()
            .await
            .unwrap();
        c.s3.put_object()
            .bucket(&bucket)
            .key("uploaded/john-doe.png")
            .body(b"png".to_vec().into())
            .send()
            .await
            .unwrap();
        let mut keys = Vec::new();
        for _ in 0..5 {
            let r = c
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in r.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                if let Some(records) = body["Records"].as_array() {
                    for rec in records {
                        assert_eq!(rec["s3"]["bucket"]["name"], bucket.as_str());
                        assert!(
                            rec["eventName"]
                                .as_str()
                                .unwrap()
                                .starts_with("ObjectCreated:")
                        );
                        // event keys are URL-encoded
                        keys.push(percent_decode(rec["s3"]["object"]["key"].as_str().unwrap()));
                    }
                }
            }
            if !keys.is_empty() {
                break;
            }
        }
        assert_eq!(
            keys,
            vec!["uploaded/john-doe.png"],
            "only uploads under uploaded/ are notified"
        );
    });

    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(
        out.stdout.contains("No changes: 19 resources up to date."),
        "{out:?}"
    );
    assert_eq!(mutating_calls(&moto), Vec::<String>::new());

    // the other published definition
    moto.start_recording();
    let out = deploy()
        .run(&["up", STACK, "--var", "query_language=jsonpath", "--yes"])
        .success();
    // the shipped template says each key once: no warning of a repeated key
    assert!(!out.stderr.contains("appears twice"), "{out:?}");
    assert_eq!(mutating_calls(&moto), vec!["UpdateStateMachine"]);
    check_resize_image(&c, "jsonpath");

    // a code change updates the function's code only
    let main = project.join("stacks/resize-image/function/main.py");
    std::fs::write(
        &main,
        std::fs::read_to_string(&main).unwrap() + "\n# changed\n",
    )
    .unwrap();
    let out = deploy()
        .run(&["plan", STACK, "--var", "query_language=jsonpath"])
        .success();
    assert!(
        out.stdout.contains("~   update   lambda_function.function"),
        "{out:?}"
    );
    moto.start_recording();
    deploy()
        .run(&["up", STACK, "--var", "query_language=jsonpath", "--yes"])
        .success();
    assert_eq!(
        mutating_calls(&moto),
        vec!["PUT /2015-03-31/functions/resize-profile-picture/code"],
        "UpdateFunctionCode only"
    );
    assert_eq!(cached(), 2);

    // the container path needs an engine: without one, a clear error and nothing changed
    moto.start_recording();
    let out = deploy()
        .env("DEPLOY_DOCKER", "/nonexistent/docker")
        .run(&[
            "up",
            STACK,
            "--var",
            "lambda_package=image",
            "--var",
            "query_language=jsonpath",
            "--yes",
        ])
        .code(2);
    assert!(
        out.stderr
            .contains("lambda_package=image needs a container engine, and none answers"),
        "{out:?}"
    );
    assert!(out.stderr.contains("--var lambda_package=zip"), "{out:?}");
    assert!(out.stderr.contains("(nothing was changed)"), "{out:?}");
    assert_eq!(mutating_calls(&moto), Vec::<String>::new());

    // destroy empties the bucket and the repository, and removes Lambda's own log group
    c.block_on(async {
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
            "layers": []});
        c.ecr.put_image().repository_name("resize-profile-picture").image_manifest(manifest.to_string()).image_tag("latest").send().await.unwrap();
    });
    let out = deploy().run(&["destroy", STACK, "--yes"]).success();
    assert!(
        out.stderr
            .contains("bucket: emptied the bucket first: deleted 2 object(s)"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("repository: emptied the repository first: deleted 1 image(s)"),
        "{out:?}"
    );
    nothing_left(&c, moto.port);
}

/// The handler, run for real (Python, Pillow) against moto's S3.
#[test]
fn resize_handler_resizes_and_reports_what_the_workflow_reads() {
    let moto = Moto::start();
    let script = r#"
import io, json, sys, os
sys.path.insert(0, os.environ["FUNCTION_DIR"])
import boto3
from PIL import Image
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
s3.create_bucket(Bucket="pics")
buf = io.BytesIO(); Image.new("RGB", (300, 200), "red").save(buf, format="PNG")
s3.put_object(Bucket="pics", Key="uploaded/john-doe.png", Body=buf.getvalue(), ContentType="image/png")
import main
record = {"s3": {"bucket": {"name": "pics"}, "object": {"key": "uploaded/john-doe.png"}}}
result = main.lambda_handler({"size": 128, "body": record}, None)
obj = s3.get_object(Bucket="pics", Key="john-doe/128.png")
img = Image.open(io.BytesIO(obj["Body"].read()))
try:
    main.lambda_handler({"size": 128, "body": {"s3": {"bucket": {"name": "pics"}, "object": {"key": "uploaded/nobody.png"}}}}, None)
    failed = False
except Exception:
    failed = True
print(json.dumps({"result": result, "size": img.size, "format": img.format, "content_type": obj["ContentType"], "missing_raises": failed}))
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .env(
            "FUNCTION_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/resize-image/function"),
        )
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["result"],
        json!({"statusCode": 200, "data": {"message": "resized uploaded/john-doe.png to 128x128", "userId": "john-doe", "bucket": "pics",
               "uploadedKey": "uploaded/john-doe.png", "resizedKey": "john-doe/128.png"}})
    );
    assert_eq!(v["size"], json!([128, 128]));
    assert_eq!(v["format"], "PNG");
    assert_eq!(v["content_type"], "image/png");
    assert_eq!(v["missing_raises"], true);
}

/// What the four stacks create grants nothing on `*` (each statement names its resources), and
/// every service role may be assumed only from this account, by the resource that uses it
/// where its ARN is known before it exists; `deploy policy` scopes what it derives too.
fn least_privilege_everywhere(w: &World) {
    let c = &w.c;
    let (trusts, documents) = c.block_on(async {
        let roles = c.iam.list_roles().send().await.unwrap();
        let trusts: Vec<(String, Value)> = roles
            .roles()
            .iter()
            .map(|r| {
                let doc = parse_policy(r.assume_role_policy_document().unwrap());
                (
                    r.role_name().to_string(),
                    doc["Statement"][0]["Condition"].clone(),
                )
            })
            .collect();
        let policies = c
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        let mut documents = vec![];
        for p in policies.policies() {
            let v = c
                .iam
                .get_policy_version()
                .policy_arn(p.arn().unwrap())
                .version_id(p.default_version_id().unwrap())
                .send()
                .await
                .unwrap();
            let doc = parse_policy(v.policy_version().unwrap().document().unwrap());
            documents.push((p.policy_name().unwrap().to_string(), doc));
        }
        (trusts, documents)
    });
    let sm = |n: &str| format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{n}");
    let expected: Vec<(&str, Option<String>)> = vec![
        (
            "datasync-bucket-replication",
            Some(format!("arn:aws:datasync:us-east-1:{ACCOUNT}:*")),
        ),
        (
            "eventbridge-should-i-deploy",
            Some(format!(
                "arn:aws:events:us-east-1:{ACCOUNT}:rule/should-i-deploy"
            )),
        ),
        ("lambda-resize-profile-picture", None),
        (
            "pipe-resize-profile-picture",
            Some(format!(
                "arn:aws:pipes:us-east-1:{ACCOUNT}:pipe/trigger-resize-profile-picture-sfn"
            )),
        ),
        ("sfn-bucket-replication", Some(sm("bucket-replication"))),
        ("sfn-create-new-user", Some(sm("create-new-user"))),
        (
            "sfn-resize-profile-picture",
            Some(sm("resize-profile-picture")),
        ),
        ("sfn-should-i-deploy", Some(sm("should-i-deploy"))),
    ];
    let mut trusts = trusts;
    trusts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(trusts.len(), 8, "{trusts:?}");
    for ((role, condition), (name, source_arn)) in trusts.iter().zip(&expected) {
        assert_eq!(role, name);
        assert_eq!(
            condition["StringEquals"]["aws:SourceAccount"], ACCOUNT,
            "{role}: {condition}"
        );
        match source_arn {
            Some(arn) => assert_eq!(
                condition["ArnLike"]["aws:SourceArn"],
                arn.as_str(),
                "{role}"
            ),
            None => assert!(condition.get("ArnLike").is_none(), "{role}: {condition}"),
        }
    }
    assert_eq!(documents.len(), 8, "{documents:?}");
    for (name, doc) in &documents {
        for st in doc["Statement"].as_array().unwrap() {
            let star = st["Resource"] == "*"
                || st["Resource"]
                    .as_array()
                    .is_some_and(|r| r.contains(&json!("*")));
            assert!(!star, "policy {name} grants on \"*\": {st}");
        }
    }
    for stack in [
        "should-i-deploy",
        "create-new-user",
        "bucket-replication",
        "resize-image",
    ] {
        let email: &[&str] = match stack {
            "create-new-user" => &["--var", "email=a@example.com"],
            _ => &[],
        };
        let out = w
            .deploy()
            .run(&[&["policy", stack], email].concat())
            .success();
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        for st in doc["Statement"].as_array().unwrap() {
            assert_ne!(st["Resource"], "*", "{stack}: {st}");
        }
    }
}

/// All four stacks at once: `up --all` (independent stacks in parallel), then `destroy` with no
/// stack removes every stack deployed in the env.
#[test]
fn all_four_stacks_up_and_down_together() {
    require_wheelhouse();
    let w = World::new();
    let out = w
        .deploy()
        .run(&["up", "--all", "--var", "email=a@example.com", "--yes"])
        .success();
    for stack in [
        "should-i-deploy",
        "create-new-user",
        "bucket-replication",
        "resize-image",
    ] {
        assert!(
            out.stdout.contains(&format!("stack {stack} (env default)")),
            "{stack}: {out:?}"
        );
    }
    let list = w
        .deploy()
        .run(&["list", "--output", "json"])
        .success()
        .json()["stacks"]
        .clone();
    let deployed: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["stack"].as_str().unwrap().to_string(),
                r["resources"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        deployed,
        vec![
            ("bucket-replication".into(), 12),
            ("create-new-user".into(), 8),
            ("resize-image".into(), 19),
            ("should-i-deploy".into(), 12)
        ]
    );
    least_privilege_everywhere(&w);
    let out = w
        .deploy()
        .run(&["up", "--all", "--var", "email=a@example.com", "--yes"])
        .success();
    assert_eq!(out.stdout.matches("No changes").count(), 4, "{out:?}");
    w.deploy().run(&["destroy", "--yes"]).success();
    nothing_left(&w.c, w.moto.port);
}
