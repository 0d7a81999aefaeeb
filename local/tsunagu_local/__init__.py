"""tsunagu's local stack: moto server as AWS, resources created from template.yaml itself, the
HttpApi served on localhost with API Gateway v2 payloads, SQS event sources polled with the
template's settings, schedules triggered on demand, and a LINE sandbox. Dev tooling only: it is
not part of the Lambda layer."""
