"""Domain services shared by the blueprints: accounts and members, invitations, keys,
sign-in rules, SSO domains and connections. Core imports models and shared modules, never a
blueprint (import-linter checks it in make lint)."""
