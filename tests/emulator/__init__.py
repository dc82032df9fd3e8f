"""Tests of the AmplifyBackend emulator, over real HTTP with boto3 and aiobotocore."""
