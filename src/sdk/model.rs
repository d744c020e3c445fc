//! The AWS SDK models of every service (`models.zip`, written by `scripts/gen-sdk-models` from
//! botocore's service models): what a service is called, how it speaks (its wire protocol,
//! endpoint prefix, signing name) and the shapes of its operations. A service is read out of
//! the archive the first time it is named and kept.

use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

static ARCHIVE: &[u8] = include_bytes!("models.zip");

/// One service's model.
#[derive(Debug, Deserialize)]
pub struct Service {
    /// The model's serviceId (`DynamoDB`, `SFN`, `Config Service`).
    pub id: String,
    /// The Java SDK v2 client's name (`DynamoDb`, `Sfn`, `Config`): Step Functions names the
    /// service by it, lowercase, and prefixes the service's errors with it.
    pub client: String,
    pub protocol: Protocol,
    pub api: String,
    /// The host's first label on AWS (`dynamodb`, `states`).
    pub prefix: String,
    /// The SigV4 service name, also IAM's action prefix for nearly every service.
    pub signing: String,
    pub json: Option<String>,
    pub target: Option<String>,
    /// A service AWS serves from one host for the whole partition: the host and its region.
    pub global: Option<(String, String)>,
    /// A JSON service that answers as its query protocol did (SQS): its errors keep the query
    /// protocol's codes.
    #[serde(default)]
    pub query_compatible: bool,
    /// Set for a service AWS has retired (its model comes from an older botocore).
    pub retired: Option<String>,
    pub ops: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "rest-json")]
    RestJson,
    #[serde(rename = "rest-xml")]
    RestXml,
    #[serde(rename = "query")]
    Query,
    #[serde(rename = "ec2")]
    Ec2,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    /// HTTP method and request URI (with `{Label}` / `{Label+}` and a fixed query).
    pub m: String,
    pub u: String,
    pub i: Option<String>,
    pub o: Option<String>,
    /// The query protocol's result element (`PublishResult`).
    pub w: Option<String>,
    /// The operation wants a Content-MD5 header (S3's DeleteObjects, PutBucket*...).
    #[serde(default)]
    pub md5: bool,
    /// The operation takes a flexible checksum of its body (S3's PutObject, UploadPart...).
    #[serde(default)]
    pub ck: bool,
}

#[derive(Debug, Deserialize)]
pub struct Shape {
    pub t: String,
    #[serde(default)]
    pub m: indexmap_free::Members,
    /// list member / map key and value shapes, and their XML names
    pub i: Option<String>,
    pub n: Option<String>,
    pub v: Option<String>,
    pub kn: Option<String>,
    pub vn: Option<String>,
    #[serde(default)]
    pub fl: bool,
    /// The member that is the HTTP payload (REST protocols).
    pub p: Option<String>,
    pub tf: Option<String>,
    /// An error shape, and its code on the wire when that is not the shape's name.
    #[serde(default)]
    pub ex: bool,
    pub ec: Option<String>,
    pub xn: Option<String>,
    #[serde(default)]
    pub doc: bool,
    /// Required members, bounds (a string's length, a list's size), pattern and enum values.
    #[serde(default)]
    pub r: Vec<String>,
    pub mn: Option<f64>,
    pub mx: Option<f64>,
    pub pt: Option<String>,
    pub en: Option<Vec<String>>,
}

/// A structure's members in the model's order.
pub mod indexmap_free {
    use serde::Deserialize;
    use serde::de::{Deserializer, MapAccess, Visitor};

    #[derive(Debug, Default)]
    pub struct Members(pub Vec<(String, super::Member)>);

    impl<'de> Deserialize<'de> for Members {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Members;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("members")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Members, A::Error> {
                    let mut v = Vec::new();
                    while let Some((k, m)) = a.next_entry()? {
                        v.push((k, m));
                    }
                    Ok(Members(v))
                }
            }
            d.deserialize_map(V)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub s: String,
    /// `header`, `headers`, `uri`, `querystring`, `statusCode`
    pub l: Option<String>,
    /// The name on the wire (locationName).
    pub n: Option<String>,
    /// EC2's query name.
    pub q: Option<String>,
    #[serde(default)]
    pub fl: bool,
    #[serde(default)]
    pub xa: bool,
    pub tf: Option<String>,
    #[serde(default)]
    pub jv: bool,
    pub xn: Option<String>,
    #[serde(default)]
    pub it: bool,
}

impl Member {
    /// The member's name on the wire, where the model gives one.
    pub fn wire<'a>(&'a self, name: &'a str) -> &'a str {
        self.n.as_deref().unwrap_or(name)
    }
}

#[derive(Deserialize)]
struct Index {
    services: HashMap<String, String>,
}

fn archive() -> zip::ZipArchive<std::io::Cursor<&'static [u8]>> {
    zip::ZipArchive::new(std::io::Cursor::new(ARCHIVE)).expect("models.zip is a zip archive")
}

fn entry(name: &str) -> Option<Vec<u8>> {
    let mut a = archive();
    let mut f = a.by_name(name).ok()?;
    let mut out = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut out).ok()?;
    Some(out)
}

fn index() -> &'static HashMap<String, String> {
    static INDEX: OnceLock<HashMap<String, String>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let raw = entry("index.json").expect("models.zip has index.json");
        serde_json::from_slice::<Index>(&raw)
            .expect("index.json reads")
            .services
    })
}

/// The model of the service Step Functions names `name` (`dynamodb`, `sfn`, `eventbridge`,
/// `redshiftdata`; botocore's names too: `stepfunctions`, `events`).
pub fn service(name: &str) -> Option<Arc<Service>> {
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<Service>>>> = OnceLock::new();
    let file = index().get(&name.to_ascii_lowercase().replace('-', ""))?;
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(s) = loaded.lock().unwrap().get(file) {
        return Some(s.clone());
    }
    let raw = entry(&format!("{file}.json"))?;
    let s: Arc<Service> = Arc::new(serde_json::from_slice(&raw).ok()?);
    loaded.lock().unwrap().insert(file.clone(), s.clone());
    Some(s)
}

/// How many services the models describe, by the names Step Functions gives them.
#[cfg(test)]
pub fn service_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = index().keys().map(String::as_str).collect();
    v.sort();
    v
}

impl Service {
    /// The operation an action names (`getObject` → GetObject).
    pub fn operation(&self, action: &str) -> Option<(&str, &Operation)> {
        let pascal = pascal(action);
        self.ops
            .get_key_value(pascal.as_str())
            .or_else(|| {
                self.ops
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(action))
            })
            .map(|(k, o)| (k.as_str(), o))
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The modelled error a wire code names, as Step Functions names it (`S3.NoSuchKeyException`),
    /// or the service's base exception for one the model does not have
    /// (`DynamoDb.DynamoDbException`).
    pub fn error_name(&self, code: &str) -> String {
        match self.modelled_error(code) {
            Some(name) => format!("{}.{name}", self.client),
            None => format!("{0}.{0}Exception", self.client),
        }
    }

    /// The error shape a wire code names, with the Exception suffix (`NoSuchKeyException`).
    pub fn modelled_error(&self, code: &str) -> Option<String> {
        let (name, _) = self
            .shapes
            .iter()
            .find(|(name, s)| s.ex && (name.as_str() == code || s.ec.as_deref() == Some(code)))?;
        Some(match name.ends_with("Exception") {
            true => name.clone(),
            false => format!("{name}Exception"),
        })
    }

    /// The IAM action an operation needs (`s3:GetObject`, `states:StartExecution`).
    pub fn iam_action(&self, operation: &str) -> String {
        let prefix = match self.signing.as_str() {
            // services whose signing name is not their IAM prefix
            "monitoring" => "cloudwatch",
            "email" => "ses",
            "execute-api" => "apigateway",
            other => other,
        };
        format!("{prefix}:{operation}")
    }
}

/// `getObject` → `GetObject`.
pub fn pascal(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_as_step_functions_names_them() {
        for (sfn, client, protocol) in [
            ("sfn", "Sfn", Protocol::Json),
            ("dynamodb", "DynamoDb", Protocol::Json),
            ("eventbridge", "EventBridge", Protocol::Json),
            ("s3", "S3", Protocol::RestXml),
            ("ec2", "Ec2", Protocol::Ec2),
            ("config", "Config", Protocol::Json),
            ("redshiftdata", "RedshiftData", Protocol::Json),
            ("emrserverless", "EmrServerless", Protocol::RestJson),
            ("iotanalytics", "IoTAnalytics", Protocol::RestJson),
            ("sns", "Sns", Protocol::Query),
        ] {
            let s = service(sfn).unwrap_or_else(|| panic!("{sfn} has a model"));
            assert_eq!(s.client, client, "{sfn}");
            assert_eq!(s.protocol, protocol, "{sfn}");
        }
        assert!(service("nosuchservice").is_none());
        assert!(service_names().len() > 400);
    }

    #[test]
    fn errors_are_named_with_the_exception_suffix() {
        let s3 = service("s3").unwrap();
        assert_eq!(s3.error_name("NoSuchKey"), "S3.NoSuchKeyException");
        let ddb = service("dynamodb").unwrap();
        assert_eq!(
            ddb.error_name("ResourceNotFoundException"),
            "DynamoDb.ResourceNotFoundException"
        );
        assert_eq!(
            ddb.error_name("ValidationException"),
            "DynamoDb.DynamoDbException"
        );
        let (op, _) = s3.operation("getObject").unwrap();
        assert_eq!(s3.iam_action(op), "s3:GetObject");
        let sfn = service("sfn").unwrap();
        assert_eq!(
            sfn.iam_action(sfn.operation("startExecution").unwrap().0),
            "states:StartExecution"
        );
    }
}
