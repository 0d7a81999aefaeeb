"""Use cases: each orchestrates domain rules and ports; none imports boto3."""
