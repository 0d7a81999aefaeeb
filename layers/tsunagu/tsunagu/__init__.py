"""tsunagu shared package: config, domain (pure rules), services (use cases), ports, adapters.

Only ``tsunagu.adapters`` may import boto3 or speak HTTP; ``tsunagu.domain`` is pure Python.
"""
