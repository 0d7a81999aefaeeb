"""The only modules that know boto3 or HTTP."""
