//! A Distributed Map's ItemReader, ItemBatcher and ResultWriter: items read from S3 (the
//! objects a listing gives, or one object's JSON, JSON Lines, CSV or S3 inventory manifest),
//! MaxItems; items grouped in batches; the iterations' results written to S3 as AWS writes
//! them (`manifest.json` and `SUCCEEDED_n` / `FAILED_n` / `PENDING_n` files). The S3 calls go
//! through `Tasks` as `arn:aws:states:::s3:*` calls, so whoever answers tasks answers them.

use super::*;

/// AWS reads at most this many items (MaxItems above it reads them all).
const MAX_ITEMS: u64 = 100_000_000;

fn reader_failed(cause: impl Into<String>) -> Failure {
    thrown("States.ItemReaderFailed".into(), cause.into())
}

fn writer_failed(cause: impl Into<String>) -> Failure {
    thrown("States.ResultWriterFailed".into(), cause.into())
}

/// One iteration's end, for the ResultWriter: its input, and its result or failure.
pub(super) struct Ended {
    pub input: Value,
    pub outcome: Result<Value, Failure>,
}

impl Run<'_> {
    /// Calls an S3 operation through the tasks, as the Map's own work.
    async fn s3(&self, state: &str, action: &str, args: Value) -> Result<Value, Failure> {
        let resource = format!("arn:aws:states:::s3:{action}");
        let call = TaskCall {
            state,
            resource: &resource,
            arguments: &args,
            token: None,
            role: None,
        };
        match self.tasks.call(call).await {
            TaskResult::Return(v) => Ok(v),
            TaskResult::Throw { error, cause } => Err(thrown(error, cause)),
            _ => Err(fail("States.Runtime", "s3 answered with a token")),
        }
    }

    /// The items an ItemReader reads, at most MaxItems of them.
    pub(super) async fn read_items(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
    ) -> Result<Vec<Value>, Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let reader = &s["ItemReader"];
        let config = &reader["ReaderConfig"];
        let args = match reader.get(if jp { "Parameters" } else { "Arguments" }) {
            Some(t) => self.payload("ItemReader", t, jp, effective, st, vars)?,
            None => json!({}),
        };
        let max = self.max_items(config, jp, st, effective, vars)?;
        let resource = reader["Resource"].as_str().unwrap_or_default();
        let action = resource.rsplit(':').next().unwrap_or_default();
        let mut items = match action {
            "listObjectsV2" => self.listed(name, args, max).await?,
            "getObject" if config["InputType"] == "PARQUET" => {
                parquet_items(self.object_bytes(name, &args).await?)?
            }
            "getObject" => {
                let body = self.s3(name, "getObject", args.clone()).await?;
                let text = body["Body"].as_str().unwrap_or_default().to_string();
                let kind = config["InputType"].as_str().unwrap_or("JSON");
                match kind {
                    "MANIFEST" => self.manifest(name, &args, &text).await?,
                    _ => parse_items(kind, &text, config)?,
                }
            }
            other => {
                return Err(reader_failed(format!(
                    "{other} is not an ItemReader resource (s3:getObject, s3:listObjectsV2)"
                )));
            }
        };
        if let Some(m) = max {
            items.truncate(m as usize);
        }
        Ok(items)
    }

    /// MaxItems or MaxItemsPath (JSONPath) / MaxItems as JSONata; 0 or none: every item.
    fn max_items(
        &self,
        config: &Value,
        jp: bool,
        st: &Value,
        effective: &Value,
        vars: &Vars,
    ) -> Result<Option<u64>, Failure> {
        let v = match (config.get("MaxItems"), config.get("MaxItemsPath")) {
            (Some(Value::String(_)), _) if !jp => {
                Some(self.eval_field("MaxItems", &config["MaxItems"], st, vars)?)
            }
            (Some(v), _) => Some(v.clone()),
            (None, Some(p)) => {
                let p = p.as_str().unwrap_or("$");
                let v = jsonpath::expression(p, effective, &st["context"], &vars.all())
                    .map_err(|m| super::walk::invalid_path(p, effective, m))?;
                Some(v)
            }
            _ => None,
        };
        // a number written as a string is read as one, as AWS does
        let n = match &v {
            Some(Value::String(t)) => t.trim().parse::<f64>().ok(),
            other => other.as_ref().and_then(Value::as_f64),
        };
        match n {
            None if v.is_some() => Err(reader_failed("field MaxItems must be a number")),
            Some(n) if n < 0.0 => Err(reader_failed("field MaxItems must be positive")),
            Some(n) if n == 0.0 || n as u64 >= MAX_ITEMS => Ok(None),
            Some(n) => Ok(Some(n as u64)),
            None => Ok(None),
        }
    }

    /// `s3:listObjectsV2`: every object of the listing (all its pages), as AWS gives them to
    /// the iterations.
    async fn listed(
        &self,
        name: &str,
        mut args: Value,
        max: Option<u64>,
    ) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        loop {
            let page = self.s3(name, "listObjectsV2", args.clone()).await?;
            for o in page["Contents"].as_array().into_iter().flatten() {
                let modified = o["LastModified"]
                    .as_str()
                    .and_then(|t| {
                        aws_smithy_types::DateTime::from_str(
                            t,
                            aws_smithy_types::date_time::Format::DateTime,
                        )
                        .ok()
                    })
                    .map(|t| json!(t.secs()))
                    .unwrap_or(Value::Null);
                items.push(
                    json!({"Etag": o["ETag"], "Key": o["Key"], "LastModified": modified,
                                  "Size": o["Size"], "StorageClass": o["StorageClass"]}),
                );
            }
            let enough = max.is_some_and(|m| items.len() as u64 >= m);
            match page["NextContinuationToken"].as_str() {
                Some(t) if page["IsTruncated"] == true && !enough => {
                    args["ContinuationToken"] = json!(t);
                }
                _ => return Ok(items),
            }
        }
    }

    /// An S3 inventory manifest: the objects its CSV files list, as listObjectsV2 items.
    async fn manifest(&self, name: &str, args: &Value, text: &str) -> Result<Vec<Value>, Failure> {
        let m: Value = serde_json::from_str(text)
            .map_err(|e| reader_failed(format!("the manifest is not JSON: {e}")))?;
        let bucket = m["destinationBucket"]
            .as_str()
            .map(|b| b.trim_start_matches("arn:aws:s3:::").to_string())
            .unwrap_or_else(|| args["Bucket"].as_str().unwrap_or_default().to_string());
        let columns: Vec<String> = m["fileSchema"]
            .as_str()
            .unwrap_or("Bucket, Key")
            .split(',')
            .map(|c| c.trim().to_string())
            .collect();
        let mut items = Vec::new();
        for f in m["files"].as_array().into_iter().flatten() {
            let args = json!({"Bucket": bucket, "Key": f["key"]});
            let body = self.object_text(name, &args).await?;
            let config = json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": columns});
            items.extend(parse_items("CSV", &body, &config)?);
        }
        Ok(items)
    }

    /// An object's bytes as they are (`s3:getObject` through the tasks' `fetch`).
    async fn object_bytes(&self, name: &str, args: &Value) -> Result<Vec<u8>, Failure> {
        let call = TaskCall {
            state: name,
            resource: "arn:aws:states:::s3:getObject",
            arguments: args,
            token: None,
            role: None,
        };
        let fetched = self.tasks.fetch(call).await;
        fetched.map_err(|(e, c)| thrown(e, c))
    }

    /// An object's text, gunzipped when it is gzip (S3 inventory files are `.csv.gz`).
    async fn object_text(&self, name: &str, args: &Value) -> Result<String, Failure> {
        let bytes = self.object_bytes(name, args).await?;
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        let mut text = String::new();
        let mut gz = flate2::read::GzDecoder::new(&bytes[..]);
        std::io::Read::read_to_string(&mut gz, &mut text)
            .map_err(|e| reader_failed(format!("{}: not gzip: {e}", args["Key"])))?;
        Ok(text)
    }

    /// Items in batches, as ItemBatcher says: `{"BatchInput": ..., "Items": [...]}` of at most
    /// MaxItemsPerBatch items and MaxInputBytesPerBatch bytes.
    pub(super) fn batches(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
        items: Vec<Value>,
    ) -> Result<Vec<Value>, Failure> {
        let (s, jp) = (state.raw, !state.jsonata());
        let Some(b) = s.get("ItemBatcher") else {
            return Ok(items);
        };
        let number = |field: &str| -> Result<Option<f64>, Failure> {
            self.number(b, field, effective, state.name, vars)
        };
        let per_batch = number("MaxItemsPerBatch")?
            .map(|n| n as usize)
            .filter(|n| *n > 0);
        let bytes = number("MaxInputBytesPerBatch")?
            .map(|n| n as usize)
            .filter(|n| *n > 0);
        let batch_input = b.get("BatchInput");
        let batch_input = batch_input
            .map(|t| self.payload("BatchInput", t, jp, effective, st, vars))
            .transpose()?;
        let wrap = |items: Vec<Value>| match &batch_input {
            Some(bi) => json!({"BatchInput": bi, "Items": items}),
            None => json!({"Items": items}),
        };
        let mut out = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        let mut size = 0usize;
        for item in items {
            let len = item.to_string().len() + 1;
            let full = per_batch.is_some_and(|n| current.len() >= n)
                || bytes.is_some_and(|n| !current.is_empty() && size + len > n);
            if full {
                out.push(wrap(std::mem::take(&mut current)));
                size = 0;
            }
            size += len;
            current.push(item);
        }
        if !current.is_empty() {
            out.push(wrap(current));
        }
        Ok(out)
    }

    /// ResultWriter: the iterations' ends written under `<Prefix>/<map run id>/` as AWS writes
    /// them, and the Map's output, `{MapRunArn, ResultWriterDetails}`; with only a WriterConfig,
    /// the results transformed as it says.
    pub(super) async fn write_results(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
        map_run: &str,
        ended: Vec<Ended>,
    ) -> Result<Value, Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let w = &s["ResultWriter"];
        let config = &w["WriterConfig"];
        let transformation = config["Transformation"].as_str().unwrap_or("NONE");
        let jsonl = config["OutputType"] == "JSONL";
        let args = match w.get(if jp { "Parameters" } else { "Arguments" }) {
            Some(t) => self.payload("ResultWriter", t, jp, effective, st, vars)?,
            None => Value::Null,
        };
        let machine = self
            .opts
            .execution_arn
            .split(':')
            .nth(6)
            .unwrap_or_default();
        let (ok, ko): (Vec<_>, Vec<_>) = ended.into_iter().partition(|e| e.outcome.is_ok());
        let record = |e: &Ended| self.child_record(machine, state, e, transformation);
        let (succeeded, failed): (Vec<Value>, Vec<Value>) = (
            ok.iter().map(record).collect(),
            ko.iter().map(record).collect(),
        );
        if w.get("Resource").is_none() {
            let mut all = succeeded;
            all.extend(failed);
            return Ok(Value::Array(all));
        }
        let (bucket, dir) = result_dir(&args, map_run);
        let mut files = serde_json::Map::new();
        for (kind, records) in [
            ("SUCCEEDED", succeeded),
            ("FAILED", failed),
            ("PENDING", vec![]),
        ] {
            let written = self
                .result_file(name, &bucket, &dir, kind, records, jsonl)
                .await?;
            files.insert(
                kind.to_string(),
                Value::Array(written.into_iter().collect()),
            );
        }
        let key = format!("{dir}/manifest.json");
        let manifest =
            json!({"DestinationBucket": bucket, "MapRunArn": map_run, "ResultFiles": files});
        let put = json!({"Bucket": bucket, "Key": key, "Body": manifest.to_string()});
        self.s3(name, "putObject", put)
            .await
            .map_err(|f| writer_failed(f.cause))?;
        Ok(json!({"MapRunArn": map_run, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}))
    }

    /// One result file (`SUCCEEDED_0.json`, ...) written, if it has records: its key and size.
    async fn result_file(
        &self,
        name: &str,
        bucket: &str,
        dir: &str,
        kind: &str,
        records: Vec<Value>,
        jsonl: bool,
    ) -> Result<Option<Value>, Failure> {
        if records.is_empty() {
            return Ok(None);
        }
        let key = format!("{dir}/{kind}_0.{}", if jsonl { "jsonl" } else { "json" });
        let body = match jsonl {
            true => records
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            false => Value::Array(records).to_string(),
        };
        let size = body.len();
        let put = json!({"Bucket": bucket, "Key": key, "Body": body});
        self.s3(name, "putObject", put)
            .await
            .map_err(|f| writer_failed(f.cause))?;
        Ok(Some(json!({"Key": key, "Size": size})))
    }

    /// What the ResultWriter writes of one iteration: with Transformation NONE its execution
    /// as DescribeExecution gives it; COMPACT and FLATTEN its output alone.
    fn child_record(
        &self,
        machine: &str,
        state: &asl::State<'_>,
        e: &Ended,
        transformation: &str,
    ) -> Value {
        let output = e.outcome.as_ref().ok().cloned();
        if transformation != "NONE" {
            return output.unwrap_or_else(|| {
                let f = e.outcome.as_ref().err();
                json!({"Error": f.map(|f| &f.error), "Cause": f.map(|f| &f.cause)})
            });
        }
        let label = state.raw["Label"].as_str().unwrap_or(state.name);
        let id = uuid::Uuid::new_v4().to_string();
        let runs = self
            .opts
            .execution_arn
            .split(":execution:")
            .next()
            .unwrap_or_default();
        let now = aws_smithy_types::DateTime::from(self.wall_start + self.elapsed())
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default();
        let mut r = json!({
            "ExecutionArn": format!("{runs}:execution:{machine}/{label}:{id}"),
            "Input": e.input.to_string(), "InputDetails": {"Included": true}, "Name": id,
            "StartDate": now, "StateMachineArn": format!("{runs}:stateMachine:{machine}/{label}"),
            "StopDate": now,
        });
        match &e.outcome {
            Ok(v) => {
                r["Output"] = json!(v.to_string());
                r["OutputDetails"] = json!({"Included": true});
                r["Status"] = json!("SUCCEEDED");
            }
            Err(f) => {
                r["Error"] = json!(f.error);
                r["Cause"] = json!(f.cause);
                r["Status"] = json!("FAILED");
            }
        }
        r
    }
}

/// Where a ResultWriter writes: its bucket, and `<Prefix>/<map run id>`.
fn result_dir(args: &Value, map_run: &str) -> (String, String) {
    let bucket = args["Bucket"].as_str().unwrap_or_default().to_string();
    let prefix = args["Prefix"].as_str().unwrap_or_default();
    let id = map_run.rsplit(':').next().unwrap_or_default();
    let dir = match prefix.trim_end_matches('/') {
        "" => id.to_string(),
        prefix => format!("{prefix}/{id}"),
    };
    (bucket, dir)
}

/// An object's items: a JSON array, JSON Lines, or CSV rows as objects by header.
fn parse_items(kind: &str, text: &str, config: &Value) -> Result<Vec<Value>, Failure> {
    match kind {
        "JSON" => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(_) => Err(reader_failed("Attempting to map over non-iterable node.")),
            Err(e) => Err(reader_failed(format!("the object is not JSON: {e}"))),
        },
        "JSONL" => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| reader_failed(format!("a line is not JSON: {e}")))
            })
            .collect(),
        "CSV" => csv_items(text, config),
        other => Err(reader_failed(format!("InputType {other} is not read here"))),
    }
}

/// A Parquet file's rows as objects, column by column.
fn parquet_items(bytes: Vec<u8>) -> Result<Vec<Value>, Failure> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let failed = |e: parquet::errors::ParquetError| {
        reader_failed(format!("the Parquet file cannot be read: {e}"))
    };
    let file = SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(failed)?;
    let rows = file.get_row_iter(None).map_err(failed)?;
    rows.map(|r| r.map(|r| r.to_json_value()).map_err(failed))
        .collect()
}

/// CSV rows as objects, by the first row's headers or the given ones: a missing field is "",
/// one past the headers is left out, and an empty line is no row.
fn csv_items(text: &str, config: &Value) -> Result<Vec<Value>, Failure> {
    let delimiter = match config["CSVDelimiter"].as_str().unwrap_or("COMMA") {
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "SPACE" => b' ',
        "TAB" => b'\t',
        _ => b',',
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = reader.records();
    let headers: Vec<String> = match config["CSVHeaderLocation"].as_str().unwrap_or("FIRST_ROW") {
        "GIVEN" => {
            let given: Vec<String> = config["CSVHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect();
            let mut seen = std::collections::HashSet::new();
            if !given.iter().all(|h| seen.insert(h)) {
                return Err(reader_failed("CSV headers cannot contain duplicates."));
            }
            given
        }
        _ => match rows.next() {
            Some(r) => r
                .map_err(|e| reader_failed(e.to_string()))?
                .iter()
                .map(str::to_string)
                .collect(),
            None => return Ok(vec![]),
        },
    };
    let mut items = Vec::new();
    for r in rows {
        let r = r.map_err(|e| reader_failed(e.to_string()))?;
        let mut o = serde_json::Map::new();
        for (i, h) in headers.iter().enumerate() {
            o.insert(h.clone(), json!(r.get(i).unwrap_or("")));
        }
        items.push(Value::Object(o));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_read_as_aws_reads_them() {
        let config = json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["H1", "H2", "H3"]});
        let items = csv_items("V1,V2,V3\n,,,\ntrue,1,'x'\nNull,None,\n   \n", &config).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[1], json!({"H1": "", "H2": "", "H3": ""}));
        assert_eq!(items[3], json!({"H1": "Null", "H2": "None", "H3": ""}));
        assert_eq!(items[4], json!({"H1": "   ", "H2": "", "H3": ""}));
        let first = json!({"CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "PIPE"});
        assert_eq!(
            csv_items("a|b\n1|2\n", &first).unwrap(),
            vec![json!({"a": "1", "b": "2"})]
        );
        let dup = json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["H", "H"]});
        assert_eq!(
            csv_items("1,2", &dup).unwrap_err().cause,
            "CSV headers cannot contain duplicates."
        );
        let not_list = parse_items("JSON", r#"{"a": 1}"#, &json!({})).unwrap_err();
        assert_eq!(
            (not_list.error.as_str(), not_list.cause.as_str()),
            (
                "States.ItemReaderFailed",
                "Attempting to map over non-iterable node."
            )
        );
        assert_eq!(
            parse_items("JSONL", "{\"a\":1}\n\n{\"a\":2}\n", &json!({}))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn parquet_rows_are_items() {
        use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
        use parquet::file::writer::SerializedFileWriter;
        let schema = "message t { required int64 id; required binary name (UTF8); }";
        let schema =
            std::sync::Arc::new(parquet::schema::parser::parse_message_type(schema).unwrap());
        let mut buf = Vec::new();
        let mut w = SerializedFileWriter::new(&mut buf, schema, Default::default()).unwrap();
        let mut group = w.next_row_group().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<Int64Type>()
            .write_batch(&[1, 2], None, None)
            .unwrap();
        c.close().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        let names = [ByteArray::from("a"), ByteArray::from("b")];
        c.typed::<ByteArrayType>()
            .write_batch(&names, None, None)
            .unwrap();
        c.close().unwrap();
        group.close().unwrap();
        w.close().unwrap();
        let items = parquet_items(buf).unwrap();
        assert_eq!(
            items,
            vec![json!({"id": 1, "name": "a"}), json!({"id": 2, "name": "b"})]
        );
        let bad = parquet_items(b"not parquet".to_vec()).unwrap_err();
        assert_eq!(bad.error, "States.ItemReaderFailed");
    }
}
