"""Pure business rules: no AWS, no HTTP. Tested without moto."""
