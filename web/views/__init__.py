"""Page views, one module per area: accounts, team settings, workflows and the editor, runs."""
