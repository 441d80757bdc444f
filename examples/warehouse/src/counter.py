"""Count each landed object's records into its dataset's counter; start a load when it is due."""

import os
from urllib.parse import unquote_plus

import boto3
from counters import add_object, start_load_if_due, table
from records import dataset_of, parse

s3 = boto3.client("s3")


def handler(event, context):
    counted = {}
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        dataset = dataset_of(key)
        if dataset is None:
            print(f"skipped s3://{bucket}/{key}: not incoming/<dataset>/<file>.csv or .jsonl")
            continue
        records = len(parse(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        item = add_object(dataset, key, records)
        if item is None:
            print(f"s3://{bucket}/{key} was already counted")
            item = table.get_item(Key={"dataset": dataset}, ConsistentRead=True)["Item"]
        else:
            print(f"{key}: {records} records, {item['records']} pending in {dataset}")
        load_id = start_load_if_due(bucket, dataset, item, os.environ["LOADER"])
        if load_id:
            print(f"{dataset} crossed the threshold: load {load_id} started")
        counted[key] = records
    return counted
