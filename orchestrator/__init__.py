"""orchestrator: an SQS-fed job-orchestration worker for the AWS Amplify Admin API."""

__version__ = "0.1.0"
