"""Teams (the tenant), memberships and roles, API tokens, credentials and global parameters."""
