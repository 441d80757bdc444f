"""Step 1: read the CSV object named by the S3 event into rows."""

import csv
import io
from urllib.parse import unquote_plus

import boto3

s3 = boto3.client("s3")


def handler(event, context):
    record = event["Records"][0]["s3"]
    bucket, key = record["bucket"]["name"], unquote_plus(record["object"]["key"])
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    print(f"parsed {len(rows)} rows from s3://{bucket}/{key}")
    return {"source": f"s3://{bucket}/{key}", "rows": rows}
