//! The request side of token accounting: what an OpenAI-compatible request body asks
//! for, read before the request is forwarded (SPEC sections 3 and 4).
//!
//! `LlmRequest::parse` reads `model`, the output cap (`max_tokens`,
//! `max_completion_tokens` or `max_output_tokens`), `stream`,
//! `stream_options.include_usage` and an estimate of the prompt tokens. The estimate
//! is the byte length of the prompt's text divided by four, rounded up (the usual
//! rule of thumb for English with BPE tokenizers): cheap, deterministic, and settled
//! against the real `usage` afterwards, so its error only lasts as long as the
//! request. `rewrite` lowers the output cap (a clamped request) and asks a stream for
//! its usage chunk.

use serde_json::{Map, Value};

/// The OpenAI-compatible endpoints whose bodies are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
}

impl Endpoint {
    /// The endpoint a request path names, whatever prefix the gateway mounts it under
    /// (`/v1/chat/completions`, `/openai/v1/chat/completions`); the query is ignored.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(Self::ChatCompletions)
        } else if path.ends_with("/completions") {
            Some(Self::Completions)
        } else if path.ends_with("/embeddings") {
            Some(Self::Embeddings)
        } else if path.ends_with("/responses") {
            Some(Self::Responses)
        } else {
            None
        }
    }

    /// The field that caps the answer, where the body names none.
    fn output_field(self) -> Option<&'static str> {
        match self {
            Self::ChatCompletions | Self::Completions => Some("max_tokens"),
            Self::Responses => Some("max_output_tokens"),
            Self::Embeddings => None,
        }
    }

    /// The fields that carry the prompt.
    fn prompt_fields(self) -> &'static [&'static str] {
        match self {
            Self::ChatCompletions => &["messages", "tools"],
            Self::Completions => &["prompt", "suffix"],
            Self::Embeddings => &["input"],
            Self::Responses => &["instructions", "input", "tools"],
        }
    }
}

/// What a request body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRequest {
    pub endpoint: Endpoint,
    pub model: Option<String>,
    /// Estimated prompt tokens (at least 1).
    pub prompt_tokens: u64,
    /// The answer's cap: the body's, or the configured default (0 for embeddings).
    pub max_output: u64,
    /// The field that set `max_output`, if the body named one.
    pub output_field: Option<&'static str>,
    pub stream: bool,
    /// Whether the client asked a stream for its usage chunk itself.
    pub include_usage: bool,
}

/// Why a body is refused (400 `invalid_request_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// The offending field, where there is one.
    pub param: Option<&'static str>,
    pub message: String,
}

impl BodyError {
    fn field(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param),
            message: message.into(),
        }
    }
}

/// The largest output cap taken at its word; beyond it the request is refused
/// (no model answers a billion tokens, and the reservation must stay exact in f64).
pub const MAX_OUTPUT_TOKENS: u64 = 1 << 30;

const OUTPUT_FIELDS: [&str; 3] = ["max_tokens", "max_completion_tokens", "max_output_tokens"];

impl LlmRequest {
    /// Reads `body`; returns the request and its parsed JSON (kept for `rewrite`).
    pub fn parse(
        endpoint: Endpoint,
        body: &[u8],
        default_max_tokens: u64,
    ) -> Result<(Self, Map<String, Value>), BodyError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| BodyError {
            param: None,
            message: format!("the request body is not valid JSON: {e}"),
        })?;
        let Value::Object(object) = value else {
            return Err(BodyError {
                param: None,
                message: "the request body must be a JSON object".to_string(),
            });
        };
        let model = match object.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m.clone()),
            Some(_) => return Err(BodyError::field("model", "`model` must be a string")),
        };
        let mut output_field = None;
        let mut max_output = None;
        for field in OUTPUT_FIELDS {
            match object.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let n =
                        v.as_u64()
                            .filter(|n| *n <= MAX_OUTPUT_TOKENS)
                            .ok_or_else(|| {
                                BodyError::field(
                            field,
                            format!("`{field}` must be an integer from 0 to {MAX_OUTPUT_TOKENS}"),
                        )
                            })?;
                    // Where several are given, the smallest binds.
                    if max_output.is_none_or(|m| n < m) {
                        max_output = Some(n);
                        output_field = Some(field);
                    }
                }
            }
        }
        let stream = match object.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(BodyError::field("stream", "`stream` must be a boolean")),
        };
        let include_usage = match object.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(BodyError::field(
                        "stream_options",
                        "`stream_options.include_usage` must be a boolean",
                    ))
                }
            },
            Some(_) => {
                return Err(BodyError::field(
                    "stream_options",
                    "`stream_options` must be an object",
                ))
            }
        };
        let prompt_bytes: u64 = endpoint
            .prompt_fields()
            .iter()
            .filter_map(|f| object.get(*f))
            .map(text_bytes)
            .sum();
        let max_output = match endpoint {
            Endpoint::Embeddings => 0,
            _ => max_output.unwrap_or(default_max_tokens),
        };
        Ok((
            Self {
                endpoint,
                model,
                prompt_tokens: estimate_tokens(prompt_bytes),
                max_output,
                output_field,
                stream,
                include_usage,
            },
            object,
        ))
    }

    /// The tokens to reserve: the prompt estimate plus the whole answer.
    pub fn reservation(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.max_output)
    }

    /// Whether the stream's usage chunk must be asked for by fairgate (and then
    /// stripped from what the client receives).
    pub fn needs_usage_injected(&self) -> bool {
        self.stream && !self.include_usage && self.endpoint != Endpoint::Responses
    }
}

/// Tokens estimated for `bytes` of text: a quarter, rounded up, at least 1.
pub fn estimate_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4).max(1)
}

/// The byte length of the text in a prompt value: strings count their bytes,
/// arrays and objects the text they hold (chat `content` parts, tool schemas), a
/// token id in a pre-tokenized prompt 4 bytes (one token).
pub fn text_bytes(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64,
        Value::Number(_) => 4,
        Value::Array(items) => items.iter().map(text_bytes).sum(),
        Value::Object(fields) => fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "role" | "type" | "name" | "id"))
            .map(|(_, v)| text_bytes(v))
            .sum(),
        Value::Bool(_) | Value::Null => 0,
    }
}

/// The body to forward instead, where one is needed: `clamp_to` lowers the output
/// cap, `inject_usage` asks the stream for its usage chunk. `None`: forward as is.
pub fn rewrite(
    request: &LlmRequest,
    mut object: Map<String, Value>,
    clamp_to: Option<u64>,
    inject_usage: bool,
) -> Option<Vec<u8>> {
    if clamp_to.is_none() && !inject_usage {
        return None;
    }
    if let Some(cap) = clamp_to {
        let field = request.output_field.or(request.endpoint.output_field())?;
        for other in OUTPUT_FIELDS {
            if other != field && object.get(other).is_some_and(|v| !v.is_null()) {
                object.insert(other.to_string(), Value::from(cap));
            }
        }
        object.insert(field.to_string(), Value::from(cap));
    }
    if inject_usage {
        match object.get_mut("stream_options") {
            Some(Value::Object(options)) => {
                options.insert("include_usage".to_string(), Value::Bool(true));
            }
            _ => {
                let mut options = Map::new();
                options.insert("include_usage".to_string(), Value::Bool(true));
                object.insert("stream_options".to_string(), Value::Object(options));
            }
        }
    }
    serde_json::to_vec(&Value::Object(object)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn parse(endpoint: Endpoint, body: Value) -> Result<LlmRequest, BodyError> {
        LlmRequest::parse(endpoint, body.to_string().as_bytes(), 256).map(|(r, _)| r)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn endpoints_are_recognised_under_any_prefix() {
        use Endpoint::*;
        for (path, want) in [
            ("/v1/chat/completions", Some(ChatCompletions)),
            ("/openai/v1/chat/completions?x=1", Some(ChatCompletions)),
            ("/v1/completions", Some(Completions)),
            ("/v1/embeddings/", Some(Embeddings)),
            ("/v1/responses", Some(Responses)),
            ("/v1/models", None),
            ("/healthz", None),
        ] {
            assert_eq!(Endpoint::from_path(path), want, "{path}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_chat_request_is_read() {
        let r = parse(
            Endpoint::ChatCompletions,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "12345678"},
                    {"role": "user", "content": [{"type": "text", "text": "1234"}]}
                ],
                "max_tokens": 100,
                "stream": true
            }),
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.prompt_tokens, 3, "12 bytes of text");
        assert_eq!(r.max_output, 100);
        assert_eq!(r.output_field, Some("max_tokens"));
        assert!(r.stream && !r.include_usage && r.needs_usage_injected());
        assert_eq!(r.reservation(), 103);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_default_cap_applies_when_none_is_named() {
        let r = parse(Endpoint::Completions, json!({"prompt": "hello"})).unwrap();
        assert_eq!((r.max_output, r.output_field), (256, None));
        let r = parse(Endpoint::Embeddings, json!({"input": ["ab", "cd"]})).unwrap();
        assert_eq!((r.max_output, r.prompt_tokens), (0, 1));
        let r = parse(
            Endpoint::Responses,
            json!({"input": "hi", "max_output_tokens": 7}),
        )
        .unwrap();
        assert_eq!(
            (r.max_output, r.output_field),
            (7, Some("max_output_tokens"))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_smallest_of_several_caps_binds() {
        let r = parse(
            Endpoint::ChatCompletions,
            json!({"messages": [], "max_tokens": 50, "max_completion_tokens": 20}),
        )
        .unwrap();
        assert_eq!(
            (r.max_output, r.output_field),
            (20, Some("max_completion_tokens"))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_bodies_are_refused_with_the_field() {
        let cases = [
            (json!({"max_tokens": -1}), Some("max_tokens")),
            (json!({"max_tokens": "10"}), Some("max_tokens")),
            (json!({"max_tokens": 1.5}), Some("max_tokens")),
            (json!({"max_tokens": 1e300}), Some("max_tokens")),
            (
                json!({"max_completion_tokens": u64::MAX}),
                Some("max_completion_tokens"),
            ),
            (json!({"stream": "yes"}), Some("stream")),
            (json!({"stream_options": 1}), Some("stream_options")),
            (
                json!({"stream_options": {"include_usage": 1}}),
                Some("stream_options"),
            ),
            (json!({"model": 7}), Some("model")),
            (json!([1, 2]), None),
        ];
        for (body, param) in cases {
            let err = parse(Endpoint::ChatCompletions, body.clone()).unwrap_err();
            assert_eq!(err.param, param, "{body}: {}", err.message);
        }
        for raw in [
            &b"not json"[..],
            b"{\"a\":",
            b"\xff\xfe",
            b"{\"n\": 1e400}",
            b"",
        ] {
            let err = LlmRequest::parse(Endpoint::Completions, raw, 1).unwrap_err();
            assert!(err.message.contains("not valid JSON"), "{}", err.message);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn null_fields_count_as_absent() {
        let r = parse(
            Endpoint::ChatCompletions,
            json!({"messages": [], "max_tokens": null, "stream": null, "stream_options": null}),
        )
        .unwrap();
        assert_eq!(
            (r.max_output, r.stream, r.include_usage),
            (256, false, false)
        );
    }

    fn rewritten(body: Value, clamp: Option<u64>, inject: bool) -> Option<Value> {
        let (r, object) =
            LlmRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes(), 256).unwrap();
        rewrite(&r, object, clamp, inject).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nothing_to_change_forwards_the_body_as_is() {
        assert_eq!(rewritten(json!({"max_tokens": 9}), None, false), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn clamping_lowers_every_cap_given() {
        let out = rewritten(
            json!({"max_tokens": 900, "max_completion_tokens": 800, "x": [1]}),
            Some(40),
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"max_tokens": 40, "max_completion_tokens": 40, "x": [1]})
        );
        let out = rewritten(json!({"messages": []}), Some(40), false).unwrap();
        assert_eq!(
            out["max_tokens"], 40,
            "the endpoint's own field when none was named"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn usage_is_asked_for_without_losing_other_stream_options() {
        let out = rewritten(json!({"stream": true}), None, true).unwrap();
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        let out = rewritten(
            json!({"stream": true, "stream_options": {"include_obfuscation": false}}),
            None,
            true,
        )
        .unwrap();
        assert_eq!(
            out["stream_options"],
            json!({"include_obfuscation": false, "include_usage": true})
        );
    }
}
