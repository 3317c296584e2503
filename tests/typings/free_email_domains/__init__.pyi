whitelist: set[str]
