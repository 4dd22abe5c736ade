"""The ``http`` node type: one outbound request, optionally followed by callback polling or a webhook wait.

Config (WORKFLOW_FORMAT.md, ``http``): ``method``, ``url`` with ``{name}`` placeholders filled from
``args``, ``headers``, ``auth``, ``query``, JSON ``body``, ``success`` rule, ``mode`` (``sync``,
``poll``, ``webhook``), ``poll`` and ``webhook`` settings. Every config value goes through
``ctx.resolve`` first; every request goes through ``workflows.engine.outbound`` (SSRF policy,
redirects, size cap).

Failures: 4xx are permanent except 429 (retryable, ``retry_after`` from ``Retry-After``); 5xx,
timeouts and transport errors are retryable; a 2xx that fails a ``when`` rule is permanent. A
``application/problem+json`` body gives the error its message (``title``) and ``detail``.

Every request carries ``Weft-Run-ID``, ``Weft-Node-ID``, ``Weft-Receipt-Token`` and
``Idempotency-Key`` (the receipt token, the same on every retry), and ``Weft-Webhook-URL`` in
webhook mode.

What the node uses of ``ctx.services`` (``workflows.engine.ports.Services``)
--------------------------------------------------------------------------
``credential(name: str) -> Mapping[str, str]``
    The team credential ``name``: ``{"kind": "api_key", "key": ...}``, ``{"kind": "bearer",
    "token": ...}`` or ``{"kind": "basic", "username": ..., "password": ...}``. Raises
    ``KeyError``/``LookupError`` when there is no such credential (→ permanent
    ``credential_not_found``).
``webhook_url(*, run_id: str, node_id: str, receipt_token: str) -> str``
    The absolute URL of ``POST /api/v1/callbacks/{run_id}/{node_id}/{receipt_token}``.
``callback_result(*, run_id: str, node_id: str, receipt_token: str) -> Mapping | None``
    Non-blocking read of the first callback stored for that receipt token, or None when none has
    arrived yet. The stored callback is ``{"content_type": str, "body": Any}``: ``body`` is the
    parsed JSON of the request (or its text when it is not JSON). Repeated callbacks never change
    what this returns. The node calls it, then ``ctx.wait(step, state)`` with steps growing from
    0.05 s to 1 s (so stop is seen within a second), until a result or ``webhook.max_wait``.
``ctx.can_park`` (from the run context, not a service)
    True in runs that may park (async runs). After a grace of ``WEBHOOK_PARK_GRACE`` seconds
    without a callback the node raises ``Park(wake_at=<max_wait deadline>, state=...)``; the
    state says the request was sent, so a resumed node never sends it again. The host must wake
    the run when the callback is stored (and, after committing the park, re-check whether one was
    stored meanwhile); a resumed node reads ``callback_result`` first.
``http_policy: OutboundPolicy`` (attribute)
    Allowed networks, response size cap, redirect limit (``NullServices``: public addresses only,
    10 MiB, 5). Every time the node reads is ``ctx.now()``, the run's clock.

Poll waits go through ``ctx.wait(interval, state)`` with ``state = {"mode": "poll", "task_id",
"polls", "started", "response"}`` so the engine may park between polls; when ``ctx.state`` is set on
entry the node continues polling without re-sending the main request. The attempt timeout
(``ctx.timeout``) applies to each request, not to the poll or webhook wait, which ``max_wait``
bounds.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from workflows.engine.jsonpaths import JsonPathLimit, find_all
from workflows.engine.nodes.base import LimitExceeded, NodeContext, NodeError, NodeResult, NodeType, Park
from workflows.engine.outbound import OutboundPolicy, OutboundResponse, outbound_request
from workflows.engine.redaction import REDACTED, redact

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
WEBHOOK_PARK_GRACE = 2.0
DEFAULT_MAX_WAIT = 86400
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STATUS_PATTERN = r"^\s*([1-5]xx|[1-5][0-9]{2}(\s*-\s*[1-5][0-9]{2})?)\s*$"

_number_or_template = {"type": ["number", "string"]}
_string_map = {"type": "object"}
_auth_schema: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["none", "api_key", "bearer", "basic"]},
        "in": {"enum": ["header", "query"]},
        "name": {"type": "string", "minLength": 1},
        "credential": {"type": "string", "minLength": 1},
        "key": {"type": "string"},
        "token": {"type": "string"},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
    "additionalProperties": False,
}
_request_properties: dict[str, Any] = {
    "method": {"enum": list(METHODS)},
    "url": {"type": "string", "minLength": 1},
    "args": _string_map,
    "headers": _string_map,
    "auth": _auth_schema,
    "query": _string_map,
    "body": {},
}
_status_rule = {
    "oneOf": [
        {"type": "string"},
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "array", "items": {"type": ["integer", "string"]}, "minItems": 1},
    ]
}
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        **_request_properties,
        "success": {
            "type": "object",
            "properties": {"status": _status_rule, "when": {"type": "string", "minLength": 1}},
            "additionalProperties": False,
        },
        "files": {"type": ["object", "string"],
                  "description": "form field -> a file input (or a list of them): sent as multipart/form-data"},
        "mode": {"enum": ["sync", "poll", "webhook"]},
        "poll": {
            "type": "object",
            "required": ["url"],
            "properties": {
                **_request_properties,
                "interval": _number_or_template,
                "task_id": {"type": "string", "minLength": 1},
                "status": {"type": "string", "minLength": 1},
                "processing": {"type": "array", "items": {}},
                "success": {"type": "array", "items": {}},
                "max_wait": _number_or_template,
            },
            "additionalProperties": False,
        },
        "webhook": {
            "type": "object",
            "properties": {"max_wait": _number_or_template},
            "additionalProperties": False,
        },
        "compensate": {
            "type": "object",
            "required": ["url"],
            "properties": _request_properties,
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


# ---------------------------------------------------------------------------------------------
# Request building


class PreparedCall:
    """One resolved request: what is sent, what the secrets are, and what may be recorded."""

    def __init__(self) -> None:
        self.method = "GET"
        self.url = ""
        self.headers: dict[str, str] = {}
        self.params: list[tuple[str, Any]] = []
        self.body: Any = None
        self.has_body = False
        self.sensitive_headers: set[str] = set()
        self.sensitive_params: set[str] = set()
        self.files: list[tuple[str, Mapping[str, Any]]] = []  # (form field, file object): multipart

    def record(self) -> dict[str, Any]:
        """The request as it may be stored: credential headers and query parameters redacted."""
        headers = {
            k: (REDACTED if k.lower() in self.sensitive_headers or k.lower() == "authorization" else v)
            for k, v in self.headers.items()
        }
        params = [(k, REDACTED if k.lower() in self.sensitive_params else v) for k, v in self.params]
        data: dict[str, Any] = {"method": self.method, "url": self.url, "headers": headers}
        if params:
            data["query"] = dict(params)
        if self.has_body:
            data["body"] = self.body
        if self.files:
            data["files"] = [{"field": field, "name": f.get("name")} for field, f in self.files]
        return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _auth_settings(ctx: NodeContext, auth: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge an ``auth`` block with its credential; register every secret in ``ctx.secrets``."""
    if not auth:
        return {"type": "none"}
    settings = dict(auth)
    name = settings.get("credential")
    if name:
        try:
            credential = dict(ctx.services.credential(name))
        except (KeyError, LookupError):
            raise NodeError(f"credential {name!r} does not exist", code="credential_not_found") from None
        for field_name in ("key", "token", "username", "password"):
            if credential.get(field_name) is not None:
                settings.setdefault(field_name, credential[field_name])
        kind = credential.get("kind")
        if not settings.get("type") and kind:
            settings["type"] = kind
    if not settings.get("type"):
        settings["type"] = (
            "api_key" if settings.get("key") else
            "bearer" if settings.get("token") else
            "basic" if settings.get("username") is not None else "none"
        )
    for field_name in ("key", "token", "password"):
        secret = settings.get(field_name)
        if secret:
            _add_secret(ctx, str(secret))
    return settings


def _add_secret(ctx: NodeContext, secret: str) -> None:
    if secret and secret not in ctx.secrets:
        ctx.secrets.append(secret)


def _apply_auth(ctx: NodeContext, call: PreparedCall, auth: Mapping[str, Any] | None) -> None:
    settings = _auth_settings(ctx, auth)
    kind = settings["type"]
    if kind == "none":
        return
    if kind == "api_key":
        key = settings.get("key")
        if not key:
            raise NodeError("api_key auth needs a key (inline or from a credential)", code="invalid_auth")
        where = settings.get("in", "header")
        if where == "query":
            name = settings.get("name") or "api_key"
            call.params.append((name, str(key)))
            call.sensitive_params.add(name.lower())
        else:
            name = settings.get("name") or "X-API-Key"
            call.headers[name] = str(key)
            call.sensitive_headers.add(name.lower())
    elif kind == "bearer":
        token = settings.get("token")
        if not token:
            raise NodeError("bearer auth needs a token (inline or from a credential)", code="invalid_auth")
        call.headers["Authorization"] = f"Bearer {token}"
        _add_secret(ctx, call.headers["Authorization"])
    elif kind == "basic":
        username, password = settings.get("username"), settings.get("password")
        if username is None or password is None:
            raise NodeError("basic auth needs a username and a password", code="invalid_auth")
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        _add_secret(ctx, encoded)
        call.headers["Authorization"] = f"Basic {encoded}"
    else:
        raise NodeError(f"unknown auth type {kind!r}", code="invalid_auth")
    call.sensitive_headers.add("authorization")


def _context_headers(ctx: NodeContext, webhook_url: str | None = None) -> dict[str, str]:
    headers = {
        "Weft-Run-ID": str(ctx.run_id),
        "Weft-Node-ID": str(ctx.node_id),
        "Weft-Receipt-Token": str(ctx.receipt_token),
        "Idempotency-Key": str(ctx.receipt_token),
    }
    if webhook_url:
        headers["Weft-Webhook-URL"] = webhook_url
    return headers


def prepare_call(
    ctx: NodeContext,
    spec: Mapping[str, Any],
    *,
    default_method: str = "GET",
    url_suffix: str | None = None,
    webhook_url: str | None = None,
) -> PreparedCall:
    """Build one request from a resolved request spec (node config, poll or compensate block)."""
    call = PreparedCall()
    call.method = str(spec.get("method") or default_method).upper()
    if call.method not in METHODS:
        raise NodeError(f"unsupported method {call.method!r}", code="invalid_config")
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise NodeError("the request has no url", code="invalid_config")
    args = dict(spec.get("args") or {})
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            return match.group(0)
        used.add(name)
        return quote(_text(args[name]), safe="")

    url = _PLACEHOLDER.sub(fill, url)
    if url_suffix is not None:
        base, sep, query = url.partition("?")
        url = base.rstrip("/") + "/" + quote(url_suffix, safe="") + sep + query
    call.url = url
    remaining_args = {k: v for k, v in args.items() if k not in used}

    call.headers.update({str(k): _text(v) for k, v in (spec.get("headers") or {}).items()})
    call.headers.update(_context_headers(ctx, webhook_url))
    for key, value in (spec.get("query") or {}).items():
        if isinstance(value, list):
            call.params.extend((str(key), _text(v)) for v in value)
        else:
            call.params.append((str(key), _text(value)))
    if "body" in spec and spec.get("body") is not None:
        if call.method in BODY_METHODS or call.method == "DELETE":
            call.body, call.has_body = spec["body"], True
    elif remaining_args and call.method in BODY_METHODS:
        call.body, call.has_body = remaining_args, True
        remaining_args = {}
    if call.method in ("GET", "DELETE"):
        call.params.extend((str(k), _text(v)) for k, v in remaining_args.items())
    call.files = _file_parts(spec.get("files"))
    if call.files and call.method not in BODY_METHODS:
        raise NodeError(f"files are sent with POST, PUT or PATCH, not {call.method}", code="invalid_config")
    if call.files and call.has_body and not isinstance(call.body, dict):
        raise NodeError("with files, the body must be an object (its fields become form fields)",
                        code="invalid_config")
    _apply_auth(ctx, call, spec.get("auth"))
    return call


def _file_parts(files: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``{"field": file object or list of them}`` as ``(field, file object)`` pairs (a null skips)."""
    if files is None:
        return []
    if not isinstance(files, Mapping):
        raise NodeError("files must be an object of form field -> file", code="invalid_config")
    parts = []
    for field, value in files.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                raise NodeError(f"files.{field}: not a file (declare the input as type file)", code="invalid_config")
            parts.append((str(field), item))
    return parts


def _policy(ctx: NodeContext) -> OutboundPolicy:
    return ctx.services.http_policy


def send(ctx: NodeContext, call: PreparedCall) -> OutboundResponse:
    multipart = None
    if call.files:
        # multipart/form-data: the file parts, and the body's fields as form fields
        multipart = ([(field, ctx.services.file_content(f)) for field, f in call.files],
                     {str(k): _text(v) for k, v in (call.body or {}).items()})
    return outbound_request(
        call.method,
        call.url,
        policy=_policy(ctx),
        headers=call.headers,
        params=call.params or None,
        json_body=call.body,
        has_body=call.has_body or multipart is not None,
        multipart=multipart,
        timeout=ctx.timeout or HttpNode.default_timeout,
        sensitive_headers=call.sensitive_headers,
        sensitive_params=call.sensitive_params,
    )


# ---------------------------------------------------------------------------------------------
# Responses, success rules, errors


def _is_problem(content_type: str) -> bool:
    return "application/problem+json" in (content_type or "").lower()


def parse_body(response: OutboundResponse) -> Any:
    """JSON bodies parsed (``application/json`` or any ``+json``), everything else kept as text."""
    text = response.text()
    content_type = response.content_type.split(";", 1)[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            return text
        except RecursionError:  # ~1,000 levels: a clear permanent failure, not an internal error
            raise NodeError("the response's JSON is nested too deeply to read", code="invalid_response",
                            detail={"status": response.status}) from None
    return text


def response_output(response: OutboundResponse) -> dict[str, Any]:
    return {"status": response.status, "headers": dict(response.headers), "body": parse_body(response)}


def status_matches(rule: Any, status: int) -> bool:
    """``"2xx"``, ``"200-299"``, ``"201"``, ``201`` or a list of these."""
    if isinstance(rule, list):
        return any(status_matches(item, status) for item in rule)
    if isinstance(rule, bool):
        return False
    if isinstance(rule, int):
        return status == rule
    text = str(rule).strip().lower()
    if re.fullmatch(r"[1-5]xx", text):
        return status // 100 == int(text[0])
    if "-" in text:
        low, _, high = text.partition("-")
        return int(low) <= status <= int(high)
    return status == int(text)


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _problem_error(
    status: int | None, body: Any, content_type: str, default: str, **kwargs: Any
) -> NodeError:
    """A NodeError for a failed response; problem+json gives the message and detail."""
    detail: dict[str, Any] = {"body": body}
    if status is not None:
        detail["status"] = status
    message = default
    if _is_problem(content_type) and isinstance(body, dict):
        message = str(body.get("title") or default)
        if body.get("detail") is not None:
            detail["detail"] = body["detail"]
            message = f"{message}: {body['detail']}"
    return NodeError(message, detail=detail, **kwargs)


def status_error(ctx: NodeContext, response: OutboundResponse, body: Any, what: str = "HTTP") -> NodeError:
    """Classify a failed response: 5xx and 429 retryable (429 with retry_after), others permanent."""
    status = response.status
    retryable = status >= 500 or status == 429
    retry_after = _retry_after(response.headers.get("Retry-After"), ctx.now()) if status in (429, 503) else None
    return _problem_error(
        status,
        body,
        response.content_type,
        f"{what} {status}",
        retryable=retryable,
        code="http_status",
        retry_after=retry_after,
    )


def check_success(ctx: NodeContext, rule: Mapping[str, Any] | None, response: OutboundResponse, output: dict[str, Any]) -> None:
    rule = rule or {}
    if rule.get("when"):
        try:
            accepted = ctx.evaluate(str(rule["when"]), {"response": output})
        except NodeError:
            raise
        except Exception as exc:
            raise NodeError(f"success rule could not be evaluated: {exc}", code="invalid_config") from None
        if accepted is True:
            return
        if response.status // 100 in (2, 3) or (400 <= response.status < 500 and response.status != 429):
            error = _problem_error(
                response.status,
                output["body"],
                response.content_type,
                f"response did not satisfy the success rule (HTTP {response.status})",
                code="validation_failed",
            )
            if response.status // 100 not in (2, 3):
                error.code = "http_status"
            raise error
        raise status_error(ctx, response, output["body"])
    if not status_matches(rule.get("status", "2xx"), response.status):
        raise status_error(ctx, response, output["body"])


def _redact(value: Any, secrets: list[str]) -> Any:
    """Belt and braces: a server echoing a secret (in any spelling) must not put it in the output or an error."""
    return redact(value, secrets)


def _redacted_error(error: NodeError, secrets: list[str]) -> NodeError:
    error.message = _redact(error.message, secrets)
    error.args = (error.message,)
    error.detail = _redact(error.detail, secrets)
    return error


def _number(value: Any, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise NodeError(f"{name} must be a number, got {value!r}", code="invalid_config") from None
    if number < 0:
        raise NodeError(f"{name} must not be negative", code="invalid_config")
    return number


def _jsonpath_first(ctx: NodeContext, path: str, data: Any) -> Any:
    try:
        matches = find_all(path, data, ctx.limits)
    except JsonPathLimit as exc:
        raise LimitExceeded(str(exc)) from None
    except Exception:
        raise NodeError(f"invalid JSONPath {path!r}", code="invalid_config") from None
    return matches[0] if matches else None


def _in_values(value: Any, values: list[Any]) -> bool:
    return value in values or str(value) in {str(v) for v in values}


# ---------------------------------------------------------------------------------------------
# The node


class HttpNode(NodeType):
    """Sends one HTTP request (see the module docstring and WORKFLOW_FORMAT.md, ``http``)."""

    type: ClassVar[str] = "http"
    title: ClassVar[str] = "HTTP request"
    config_schema: ClassVar[dict[str, Any]] = CONFIG_SCHEMA
    default_retry: ClassVar[dict[str, Any] | None] = {"count": 1, "interval": 300, "backoff": "fixed"}
    default_timeout: ClassVar[float | None] = 30
    self_timed: ClassVar[bool] = True

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[list[Any], str]]:
        when = (config.get("success") or {}).get("when")
        return [(["success", "when"], when)] if isinstance(when, str) and when else []

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        problems: list[dict[str, str]] = []
        status = (config.get("success") or {}).get("status")
        for item in status if isinstance(status, list) else ([status] if status is not None else []):
            if isinstance(item, str) and not re.match(_STATUS_PATTERN, item):
                problems.append({"path": f"{path}/success/status", "message": f"invalid status pattern {item!r}"})
        mode = config.get("mode", "sync")
        if mode == "poll" and not config.get("poll"):
            problems.append({"path": f"{path}/poll", "message": "mode poll needs a poll block"})
        url = config.get("url")
        if isinstance(url, str) and not re.match(r"^(https?://|\{\{|\$\{)", url.strip()):
            problems.append({"path": f"{path}/url", "message": "url must start with http:// or https://"})
        return problems

    def run(self, ctx: NodeContext) -> NodeResult:
        try:
            return self._run(ctx)
        except NodeError as error:
            raise _redacted_error(error, ctx.secrets) from None

    def _run(self, ctx: NodeContext) -> NodeResult:
        config = ctx.resolve(dict(ctx.config))
        mode = config.get("mode") or "sync"
        state = dict(ctx.state) if ctx.state else None
        if state and state.get("mode") == "poll":
            return self._poll(ctx, config, state)
        if state and state.get("mode") == "webhook":
            return self._await_callback(ctx, config, state)

        webhook_url = None
        if mode == "webhook":
            webhook_url = ctx.services.webhook_url(run_id=ctx.run_id, node_id=ctx.node_id, receipt_token=ctx.receipt_token)
        call = prepare_call(ctx, config, webhook_url=webhook_url)
        response = send(ctx, call)
        output = response_output(response)
        check_success(ctx, config.get("success"), response, output)
        output = _redact(output, ctx.secrets)
        process_data = {"request": _redact(call.record(), ctx.secrets)}

        if mode == "poll":
            poll = config.get("poll") or {}
            task_id = _jsonpath_first(ctx, str(poll.get("task_id") or "$.taskId"), output["body"])
            if task_id is None or task_id == "":
                raise NodeError(
                    f"the response has no task id at {poll.get('task_id') or '$.taskId'}",
                    code="task_id_missing",
                    detail={"body": output["body"]},
                )
            state = {"mode": "poll", "task_id": task_id, "polls": 0, "started": ctx.now(), "response": output}
            return self._poll(ctx, config, state, process_data)
        if mode == "webhook":
            state = {"mode": "webhook", "sent": True, "started": ctx.now(), "response": output}
            return self._await_callback(ctx, config, state, process_data)
        return NodeResult(output=output, process_data=process_data)

    def _poll(
        self,
        ctx: NodeContext,
        config: Mapping[str, Any],
        state: dict[str, Any],
        process_data: dict[str, Any] | None = None,
    ) -> NodeResult:
        poll = dict(config.get("poll") or {})
        interval = _number(poll.get("interval"), "poll.interval", 10)
        max_wait = _number(poll.get("max_wait"), "poll.max_wait", DEFAULT_MAX_WAIT)
        processing = list(poll.get("processing") or ["PROCESSING"])
        success = list(poll.get("success") or ["SUCCESS"])
        status_path = str(poll.get("status") or "$.status")
        task_id = state["task_id"]
        deadline = float(state["started"]) + max_wait
        while True:
            remaining = deadline - ctx.now()
            if remaining <= 0:
                raise NodeError(
                    f"task {task_id} did not finish within {max_wait:g} s",
                    code="timeout",
                    detail={"task_id": task_id, "polls": state["polls"]},
                )
            ctx.wait(min(interval, remaining), dict(state))
            call = prepare_call(ctx, poll, url_suffix=str(task_id))
            response = send(ctx, call)
            state["polls"] = int(state["polls"]) + 1
            body = _redact(parse_body(response), ctx.secrets)
            if not 200 <= response.status < 300:
                raise _problem_error(
                    response.status,
                    body,
                    response.content_type,
                    f"poll for task {task_id} answered HTTP {response.status}",
                    code="poll_failed",
                )
            status = _jsonpath_first(ctx, status_path, body)
            if _in_values(status, processing):
                continue
            if _in_values(status, success):
                output = dict(state["response"])
                output["task_id"] = task_id
                output["poll"] = {"status": status, "body": body, "polls": state["polls"]}
                return NodeResult(output=output, process_data=process_data)
            raise NodeError(
                f"task {task_id} ended with status {status!r}",
                code="task_failed",
                detail={"task_id": task_id, "status": status, "body": body, "polls": state["polls"]},
            )

    def _await_callback(
        self,
        ctx: NodeContext,
        config: Mapping[str, Any],
        state: dict[str, Any],
        process_data: dict[str, Any] | None = None,
    ) -> NodeResult:
        max_wait = _number((config.get("webhook") or {}).get("max_wait"), "webhook.max_wait", DEFAULT_MAX_WAIT)
        read = ctx.services.callback_result
        deadline = float(state["started"]) + max_wait
        can_park = ctx.can_park
        entered = ctx.now()
        step = 0.05
        while True:
            result = read(run_id=ctx.run_id, node_id=ctx.node_id, receipt_token=ctx.receipt_token)
            if result is not None:
                return self._callback_output(ctx, state, result, process_data)
            now = ctx.now()
            remaining = deadline - now
            if remaining <= 0:
                raise NodeError(
                    f"no callback within {max_wait:g} s", code="timeout", detail={"max_wait": max_wait}
                )
            if can_park and now - entered >= WEBHOOK_PARK_GRACE:
                raise Park(wake_at=deadline, state=dict(state))
            ctx.wait(min(step, remaining), dict(state))
            step = min(step * 2, 1.0)

    def _callback_output(
        self,
        ctx: NodeContext,
        state: Mapping[str, Any],
        result: Mapping[str, Any],
        process_data: dict[str, Any] | None,
    ) -> NodeResult:
        body = _redact(result.get("body"), ctx.secrets)
        content_type = str(result.get("content_type") or "")
        if _is_problem(content_type):
            status = body.get("status") if isinstance(body, dict) else None
            raise _problem_error(
                status if isinstance(status, int) else None,
                body,
                content_type,
                "the service reported a failure",
                code="callback_failed",
            )
        output = dict(state["response"])
        output["body"] = body
        return NodeResult(output=output, process_data=process_data)

    def compensate(self, ctx: NodeContext, output: Any) -> None:
        """Send the node's ``compensate`` request; any failure is a NodeError.

        ``ctx.config`` is either the node config holding a ``compensate`` block, or the compensate
        request itself (whichever the scheduler passes); ``output`` is in scope for its templates
        through ``ctx.resolve``.
        """
        raw = ctx.config.get("compensate") if isinstance(ctx.config.get("compensate"), Mapping) else ctx.config
        try:
            spec = ctx.resolve(dict(raw))
            call = prepare_call(ctx, spec)
            response = send(ctx, call)
            body = parse_body(response)
            if not 200 <= response.status < 300:
                raise status_error(ctx, response, body, "compensation request answered HTTP")
        except NodeError as error:
            raise _redacted_error(error, ctx.secrets) from None
