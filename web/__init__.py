"""The server-rendered web UI: accounts, apps and workflows, the editor, runs."""
