"""Any server that speaks the OpenAI Chat Completions API (vLLM, SGLang, llama.cpp, Ollama,
``transformers serve``, hosted APIs), over httpx.

Retries with backoff on 429/5xx/connection errors/timeouts/malformed bodies; a clear error on other 4xx.
Several base URLs spread the requests and skip an endpoint that is down. Tool calls use the server's
native ``tools`` (validated against their schemas) or, with ``native_tools=False``, a JSON reply
constrained by ``response_format`` and validated here.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from lab.models.backend import BaseChatModel, ChatRequest
from lab.models.base import ChatResponse, Message, Sampling, ToolCall, ToolSpec, Usage
from lab.models.constrained import instructions, parse_reply, reply_schema, validate_arguments
from lab.models.errors import ModelError, ModelOutputError
from lab.secrets import redact, register_secret, register_url_secrets

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIModel(BaseChatModel):
    """A chat model behind one or more OpenAI-compatible endpoints.

    Args:
        model: The server's model name.
        base_urls: Endpoints (``.../v1``); default ``$LAB_OPENAI_BASE_URL``, ``$OPENAI_BASE_URL`` or OpenAI's.
        api_key: Bearer key; default ``$LAB_OPENAI_API_KEY`` or ``$OPENAI_API_KEY``; ``""`` sends none.
            It is registered as a secret, so it never reaches events or logs.
        timeout: Seconds per request.
        retries: Further attempts after a retryable failure (429, 5xx, connection error, timeout,
            malformed body, a reply that does not match its schema).
        backoff: First backoff in seconds (doubles each attempt, with jitter; ``Retry-After`` wins).
        cooldown: Seconds an endpoint that failed is skipped while others are up.
        native_tools: Send ``tools`` natively (else constrain the reply to a tool-call JSON Schema).
        name: Name recorded with each call (default ``openai:<model>``).

    Raises:
        ModelError: No endpoint given and none configured.
    """

    system = "openai"

    def __init__(self, model: str, *, base_urls: list[str] | str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3, backoff: float = 0.5, cooldown: float = 30.0,
                 native_tools: bool = True, name: str | None = None) -> None:
        if isinstance(base_urls, str):
            base_urls = base_urls.split(",")
        urls = [u.strip().rstrip("/") for u in base_urls or [] if u.strip()]
        if not urls:
            urls = [os.environ.get("LAB_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
        self.model = model
        self.name = name or f"openai:{model}"
        self.base_urls = urls
        key = api_key if api_key is not None else (
            os.environ.get("LAB_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY"))  # "": send no key
        register_secret(key)
        for u in urls:
            register_url_secrets(u)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self.retries = retries
        self.backoff = backoff
        self.cooldown = cooldown
        self.native_tools = native_tools
        self._down_until = dict.fromkeys(urls, 0.0)
        self._next = itertools.cycle(range(len(urls)))
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    # -- the ChatModel interface -----------------------------------------------------------------

    def chat(self, messages: list[Message], *, tools: list[ToolSpec] | None = None,
             response_schema: dict[str, Any] | None = None, sampling: Sampling | None = None,
             recorder: RunRecorder | None = None, agent: str | None = None) -> ChatResponse:
        """Answer ``messages`` (see :class:`lab.models.ChatModel`) natively, or with the tool calls or JSON
        asked for in the prompt when the server ignores ``tools``/``response_format``
        (:mod:`lab.models.prompted`). Raises as :meth:`BaseChatModel.chat` does."""
        from lab.models.prompted import chat_with_fallback

        return chat_with_fallback(self, super().chat, messages, tools=tools, response_schema=response_schema,
                                  sampling=sampling, recorder=recorder, agent=agent)

    def _chat(self, req: ChatRequest) -> ChatResponse:
        """One attempt, at the next endpoint that is up (see :class:`lab.models.ChatModel`); the base class
        retries and records it.

        Raises:
            ModelError: A 4xx other than 408/409/425/429 (not retryable), or a transient fault (retryable).
            ModelOutputError: The reply is malformed or off-schema (retryable).
        """
        req.server = self._pick()
        body = self._body(req.messages, req.tools, req.response_schema, req.sampling)
        return self._once(req.server, body, req.tools, req.response_schema, req.sampling)

    # -- one request -----------------------------------------------------------------------------

    def _pick(self) -> str:
        """The next endpoint in turn that is up (or, when all are down, the one back soonest)."""
        with self._lock:
            now = time.monotonic()
            for _ in self.base_urls:
                url = self.base_urls[next(self._next)]
                if self._down_until[url] <= now:
                    return url
            return min(self.base_urls, key=self._down_until.__getitem__)

    def _mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + self.cooldown

    def _once(self, url: str, body: dict[str, Any], tools: list[ToolSpec] | None,
              response_schema: dict[str, Any] | None, sampling: Sampling) -> ChatResponse:
        where = f"{self.name} at {redact(url)}"
        try:
            r = self._client.post(f"{url}/chat/completions", json=body)
        except httpx.TimeoutException as e:
            self._mark_down(url)
            raise ModelError(f"{where}: no answer within {self._client.timeout.read} s ({type(e).__name__})",
                             retryable=True) from e
        except httpx.TransportError as e:
            self._mark_down(url)
            raise ModelError(f"{where}: server unreachable ({type(e).__name__}: {redact(str(e))})",
                             retryable=True) from e
        if r.status_code >= 400:
            detail = redact(r.text[:300])
            if r.status_code >= 500:
                self._mark_down(url)
            raise ModelError(f"{where}: HTTP {r.status_code} {r.reason_phrase}: {detail}",
                             retryable=r.status_code in RETRY_STATUS, retry_after=_retry_after(r))
        try:
            data = r.json()
            choice = data["choices"][0]
            out = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ModelOutputError(f"{where}: malformed response (no choices[0].message): {redact(r.text[:200])!r}",
                                   raw=redact(r.text)) from e
        usage = data.get("usage") or {}
        usage = Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        finish = choice.get("finish_reason") or "stop"
        model = data.get("model") or self.model
        content = out.get("content") or ""
        if "response_format" in body and not (self.native_tools and out.get("tool_calls")):
            if finish == "length":
                raise ModelOutputError(f"{where}: reply cut by max_tokens before the JSON was complete", raw=content)
            json_tools = None if self.native_tools else tools
            msg, parsed = parse_reply(content, json_tools, sampling.tool_choice, response_schema, where=where)
            finish = "tool_calls" if msg.tool_calls else finish
            return ChatResponse(msg, finish_reason=finish, usage=usage, model=model, parsed=parsed)
        calls: list[ToolCall] = []
        for c in out.get("tool_calls") or []:
            try:
                fn = c["function"]
                args = fn.get("arguments") or "{}"
                args = json.loads(args) if isinstance(args, str) else args
                call = ToolCall(c.get("id") or f"call_{len(calls)}", fn["name"], args)
            except (ValueError, KeyError, TypeError) as e:
                raise ModelOutputError(f"{where}: malformed tool call {redact(json.dumps(c)[:200])}",
                                       raw=redact(json.dumps(c))) from e
            validate_arguments(call, tools or [], where=where)
            calls.append(call)
        return ChatResponse(Message("assistant", content, tool_calls=calls), finish_reason=finish, usage=usage,
                            model=model)

    def _body(self, messages: list[Message], tools: list[ToolSpec] | None, response_schema: dict[str, Any] | None,
              sampling: Sampling) -> dict[str, Any]:
        msgs = [_wire_message(m, self.native_tools) for m in messages]
        body: dict[str, Any] = {"model": self.model, "messages": msgs}
        for key, value in (("temperature", sampling.temperature), ("top_p", sampling.top_p),
                           ("max_tokens", sampling.max_tokens), ("stop", sampling.stop), ("seed", sampling.seed)):
            if value is not None:
                body[key] = value
        choice = sampling.tool_choice
        if tools and self.native_tools:
            body["tools"] = [t.to_dict() for t in tools]
            if choice:
                body["tool_choice"] = (choice if choice in ("auto", "required", "none")
                                       else {"type": "function", "function": {"name": choice}})
            schema = response_schema
        else:
            schema = reply_schema(tools, choice, response_schema)
            extra = instructions(tools, choice, response_schema)
            if extra:
                if msgs and msgs[0]["role"] == "system":
                    msgs[0] = {**msgs[0], "content": f"{msgs[0]['content']}\n\n{extra}"}
                else:
                    msgs.insert(0, {"role": "system", "content": extra})
        if schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": schema, "strict": False}}
        return body


def _wire_message(m: Message, native_tools: bool) -> dict[str, Any]:
    """A message as the Chat Completions API wants it (tool-call arguments as JSON strings)."""
    if m.tool_calls and not native_tools:
        calls = [json.dumps({"name": c.name, "arguments": c.arguments}) for c in m.tool_calls]
        return {"role": m.role, "content": "\n".join(filter(None, [m.content, *calls]))}
    if m.role == "tool" and not native_tools:
        return {"role": "user", "content": f"Tool result: {m.content}"}
    d = m.to_dict()
    for c in d.get("tool_calls", []):
        c["function"]["arguments"] = json.dumps(c["function"]["arguments"])
    return d


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return min(60.0, float(r.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
