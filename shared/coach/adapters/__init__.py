"""One adapter per outside system (S3/SQS/DynamoDB/SSM, completion API, Reddit)."""
