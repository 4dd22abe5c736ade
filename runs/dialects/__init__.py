"""Run API dialects: Dify-style (``/v1/``, ``dify``) and Coze-style (the root, ``coze``).

Both serve the same runs as the native API (``runs.apis``) through the same services; a dialect
only translates requests, responses, streamed events and errors. Shared parts are in ``common``.
"""
