"""Drives a fairgate gateway with the official OpenAI Python SDK (SPEC section 6: any
OpenAI SDK pointed at the gateway works unchanged).

Run by tests/tests/e2e/openai_sdk.rs as `python openai_sdk.py answers|refusals`
(the group of cases to run), which starts the gateway and asserts on what this
prints: it only observes. Each case calls the SDK as an application would and
records what the SDK made of the answer (the parsed result, or the exception with its
`code`, `type`, `param` and `body`) and every HTTP request the SDK sent for it (its
retries included), one JSON object per case on stdout.

Environment:
  FAIRGATE_BASE_URL         the gateway's `/v1` URL
  FAIRGATE_OPENAI_VERSION   the SDK version scripts/lib.sh pins; any other fails
  FAIRGATE_KEY_<NAME>       a tenant's JWT, used as the SDK's api_key, for the names
                            ACME (no limits), METERED (1 request/s, burst 1),
                            SMALL (token burst 100), STRANGER (no such tenant)
"""

import json
import os
import sys
import time

try:
    import openai
except ImportError as e:
    sys.exit(
        f"{sys.executable} has no openai package ({e}): "
        "run `source scripts/lib.sh; ensure_openai_sdk`"
    )

MODEL = "fairgate-mock-1"
MESSAGES = [{"role": "user", "content": "hi there"}]
# The headers of an answer worth showing: fairgate's refusal headers (SPEC section 6).
SHOWN_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "www-authenticate",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)


class Wire:
    """Every request an SDK client sends and every answer it gets, as they happen."""

    def __init__(self):
        self.sent = []

    def on_request(self, request):
        self.sent.append(
            {
                "method": request.method,
                "path": request.url.path,
                "retry_count": request.headers.get("x-stainless-retry-count"),
                "at": time.monotonic(),
            }
        )

    def on_response(self, response):
        self.sent[-1]["status"] = response.status_code
        self.sent[-1]["retry_after_ms"] = response.headers.get("retry-after-ms")

    def take(self):
        sent, self.sent = self.sent, []
        return sent


def key(name):
    return os.environ[f"FAIRGATE_KEY_{name}"]


def client(api_key, wire):
    """An SDK client of the gateway, as an application makes one, that reports to
    `wire`."""
    http = openai.DefaultHttpxClient(
        event_hooks={"request": [wire.on_request], "response": [wire.on_response]},
        # The gateway is on 127.0.0.1: no proxy of the environment in between.
        trust_env=False,
    )
    return openai.OpenAI(
        base_url=os.environ["FAIRGATE_BASE_URL"],
        api_key=api_key,
        http_client=http,
        timeout=20,
    )


def error_of(err):
    """What the SDK parsed from an error answer."""
    seen = {"class": type(err).__name__}
    if isinstance(err, openai.APIStatusError):
        seen.update(
            status=err.status_code,
            code=err.code,
            type=err.type,
            param=err.param,
            body=err.body,
            headers={
                h: err.response.headers[h]
                for h in SHOWN_HEADERS
                if h in err.response.headers
            },
        )
    else:
        seen["message"] = str(err)
    return seen


def stream_of(chunks):
    """A stream as the SDK parsed it, chunk by chunk."""
    content, finish, usage, usage_chunks, count = [], None, None, 0, 0
    for chunk in chunks:
        count += 1
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            usage_chunks += 1
            usage = {"usage": chunk.usage.model_dump(), "choices": len(chunk.choices)}
    return {
        "content": "".join(content),
        "finish_reason": finish,
        "chunks": count,
        "usage_chunks": usage_chunks,
        "last_usage": usage,
    }


def run(name, wire, call):
    """Runs one case; prints what the SDK returned or raised, and the wire."""
    started = time.monotonic()
    case = {"case": name}
    try:
        case["result"] = call()
    except openai.OpenAIError as err:
        case["error"] = error_of(err)
    case["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    sent = wire.take()
    for request in sent:
        request["at_ms"] = round((request.pop("at") - started) * 1000)
    case["requests"] = sent
    print(json.dumps(case), flush=True)


def chat(c, **extra):
    return c.chat.completions.create(
        **{"model": MODEL, "messages": MESSAGES, "max_tokens": 5, **extra}
    )


def answers(wire):
    """Answers, as the SDK parses them, of a tenant with no limits."""
    acme = client(key("ACME"), wire)

    def answer():
        r = chat(acme)
        return {
            "object": r.object,
            "model": r.model,
            "content": r.choices[0].message.content,
            "role": r.choices[0].message.role,
            "finish_reason": r.choices[0].finish_reason,
            "usage": r.usage.model_dump(),
        }

    run("chat", wire, answer)
    run("chat_stream", wire, lambda: stream_of(chat(acme, stream=True)))
    # The same stream cut anywhere on its way (the mock sends it 16 bytes at a time):
    # fairgate still finds the usage chunk to take out, the SDK still reads events.
    run(
        "chat_stream_cut",
        wire,
        lambda: stream_of(
            chat(acme, stream=True, extra_headers={"x-mock-split-bytes": "16"})
        ),
    )
    run(
        "chat_stream_usage",
        wire,
        lambda: stream_of(
            chat(acme, stream=True, stream_options={"include_usage": True})
        ),
    )

    def completion():
        r = acme.completions.create(model=MODEL, prompt="hi there", max_tokens=3)
        return {"text": r.choices[0].text, "usage": r.usage.model_dump()}

    run("completion", wire, completion)

    def embedding():
        # The SDK asks for base64 and decodes it itself.
        r = acme.embeddings.create(model=MODEL, input="hi there")
        return {"dimensions": len(r.data[0].embedding), "usage": r.usage.model_dump()}

    run("embedding", wire, embedding)
    run("models", wire, lambda: [m.id for m in acme.models.list()])


def refusals(wire):
    """Refusals, as the SDK raises them, and the SDK's own retries (it makes up to
    2 by default)."""
    acme = client(key("ACME"), wire)
    # The SDK sends what it is given; fairgate reads the body and refuses it.
    run("bad_body", wire, lambda: chat(acme, max_tokens=-1))
    big = [{"role": "user", "content": "x" * 8192}]
    run("too_big", wire, lambda: chat(acme, messages=big))
    run("bad_key", wire, lambda: chat(client("not-a-jwt", wire)))
    run("unknown_tenant", wire, lambda: chat(client(key("STRANGER"), wire)))
    # More than the tenant's token burst could ever hold: a 429, which the SDK
    # retries unless told not to.
    small = client(key("SMALL"), wire)
    run("too_large", wire, lambda: chat(small, max_tokens=1000))

    # One request a second, burst 1: the first is served, then the bucket is empty
    # for about a second. Without retries the SDK raises at once; with its default
    # retries it waits as retry-after-ms says, and the retry is served.
    metered = client(key("METERED"), wire)
    once = metered.with_options(max_retries=0)
    run("metered_first", wire, lambda: chat(metered).choices[0].message.content)
    run("metered_no_retries", wire, lambda: chat(once))
    run("metered_stream_no_retries", wire, lambda: stream_of(chat(once, stream=True)))
    run("metered_retried", wire, lambda: chat(metered).choices[0].message.content)


GROUPS = {"answers": answers, "refusals": refusals}


def main():
    pinned = os.environ.get("FAIRGATE_OPENAI_VERSION")
    if pinned and openai.__version__ != pinned:
        sys.exit(
            f"openai {openai.__version__} in {sys.executable}, want {pinned}: "
            "run `source scripts/lib.sh; ensure_openai_sdk`"
        )
    if len(sys.argv) != 2 or sys.argv[1] not in GROUPS:
        sys.exit(f"usage: openai_sdk.py {'|'.join(GROUPS)}")
    print(json.dumps({"openai": openai.__version__}), flush=True)
    GROUPS[sys.argv[1]](Wire())


if __name__ == "__main__":
    main()
