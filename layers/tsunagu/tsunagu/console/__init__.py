"""The operator console: staff users, sessions and the Japanese web pages for the business's staff."""
