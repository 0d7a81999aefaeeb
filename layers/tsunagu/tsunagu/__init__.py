"""tsunagu shared package: one room per business capability (accounts, intake, messaging, linking,
notifications, coupons, billing), each with its domain rules, ports, services, store and routes,
and the infrastructure wing. Only ``tsunagu.infrastructure`` and the capability stores may import
boto3; domain modules are pure Python. Map: docs/architecture.md."""
