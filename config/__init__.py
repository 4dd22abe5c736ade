"""Project configuration: settings from the environment, URLs, ASGI routing, the API error handler."""
