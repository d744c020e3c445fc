"""Resizes an uploaded profile picture (exercise 4 of the tutorial).

Invoked by the state machine with {"size": N, "body": <one S3 event record>}: downloads the
object named by body.s3.bucket.name / body.s3.object.key, resizes it to N x N with Pillow
(keeping its format), uploads it as <userId>/<N>.png with the original content type, where the
user id is the file name without ".png", and returns what the state machine reads as
payload.data.*. Any failure raises, so the workflow's Retry / Catch see it.
"""
import io
import os
import urllib.parse

import boto3
from PIL import Image

s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def lambda_handler(event, context):
    size = int(event["size"])
    record = event["body"]
    bucket = record["s3"]["bucket"]["name"]
    key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    user_id = os.path.basename(key)
    if user_id.lower().endswith(".png"):
        user_id = user_id[: -len(".png")]
    if not user_id:
        raise ValueError(f"cannot tell the user id from the key {key!r}")

    original = s3.get_object(Bucket=bucket, Key=key)
    content_type = original.get("ContentType") or "image/png"
    with Image.open(io.BytesIO(original["Body"].read())) as image:
        fmt = image.format or "PNG"
        resized = image.resize((size, size))
        out = io.BytesIO()
        resized.save(out, format=fmt)

    resized_key = f"{user_id}/{size}.png"
    s3.put_object(Bucket=bucket, Key=resized_key, Body=out.getvalue(), ContentType=content_type)
    return {
        "statusCode": 200,
        "data": {
            "message": f"resized {key} to {size}x{size}",
            "userId": user_id,
            "bucket": bucket,
            "uploadedKey": key,
            "resizedKey": resized_key,
        },
    }
