// Calls the Step Functions API with @aws-sdk/client-sfn (installed in the folder given second):
// one JSON request a line on stdin ({"op": "StartExecution", "params": {...}}), one JSON answer a
// line on stdout ({"ok": {...}} or {"error": name, "message": ...}). every_operation.py drives it.
const path = require("node:path");
const readline = require("node:readline");
const [endpoint, dir] = process.argv.slice(2);
const sfn = require(path.join(dir, "node_modules", "@aws-sdk", "client-sfn"));
const client = new sfn.SFNClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  disableHostPrefix: true,
  maxAttempts: 1,
});
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const { op, params } = JSON.parse(line);
  lines.pause();
  try {
    const out = await client.send(new sfn[`${op}Command`](params));
    delete out.$metadata;
    process.stdout.write(JSON.stringify({ ok: out }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: e.name, message: String(e.message) }) + "\n");
  }
  lines.resume();
});
