//! The OpenAI wire format: a request body read into what the mock needs to serve it
//! (a [`Job`]), and the JSON bodies it answers with.
//!
//! Requests are read leniently, as OpenAI-compatible servers do: unknown fields are
//! ignored, only the fields the mock uses are typed, and a wrong type or a missing
//! required field is an error naming the field path (a 400).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::embedding;
use crate::tokens::{self, Finish};

/// The inference endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
}

impl Endpoint {
    /// The fields that hold the prompt (as in fairgate's filter).
    fn prompt_fields(self) -> &'static [&'static str] {
        match self {
            Endpoint::Chat => &["messages", "tools"],
            Endpoint::Completions => &["prompt", "suffix"],
            Endpoint::Embeddings => &["input"],
        }
    }
}

/// A prompt (`/v1/completions`) or input (`/v1/embeddings`): a text, texts, token ids
/// or lists of token ids. Read to refuse anything else, and to embed each item.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u64>),
    TokenLists(Vec<Vec<u64>>),
}

impl Input {
    /// Each item of the input, as the bytes its embedding is derived from.
    fn items(&self) -> Vec<Vec<u8>> {
        let ids = |ids: &[u64]| ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        match self {
            Input::Text(text) => vec![text.as_bytes().to_vec()],
            Input::Texts(texts) => texts.iter().map(|t| t.as_bytes().to_vec()).collect(),
            Input::Tokens(list) => vec![ids(list)],
            Input::TokenLists(lists) => lists.iter().map(|list| ids(list)).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The body of `/v1/chat/completions` and `/v1/completions`.
#[derive(Debug, Deserialize)]
struct GenerateRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    prompt: Option<Input>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// The body of `/v1/embeddings`.
#[derive(Debug, Deserialize)]
struct EmbedRequest {
    #[serde(default)]
    model: Option<String>,
    input: Input,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    encoding_format: Option<EncodingFormat>,
}

/// A text to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generate {
    pub model: Option<String>,
    pub prompt_tokens: u64,
    /// The smallest of `max_tokens` and `max_completion_tokens`.
    pub cap: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Inputs to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub model: Option<String>,
    pub prompt_tokens: u64,
    items: Vec<Vec<u8>>,
    dimensions: usize,
    base64: bool,
}

/// What a request asks of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Generate(Generate),
    Embed(Embed),
}

impl Job {
    /// The request's prompt tokens (see [`crate::tokens`]).
    pub fn prompt_tokens(&self) -> u64 {
        match self {
            Job::Generate(g) => g.prompt_tokens,
            Job::Embed(e) => e.prompt_tokens,
        }
    }
}

/// The largest `dimensions` an embedding request may ask for.
pub const MAX_DIMENSIONS: usize = 4096;

/// Reads the body of a request to `endpoint`; the error is the message of a 400.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Job, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    let Value::Object(object) = &value else {
        return Err("the request body must be a JSON object".into());
    };
    let prompt_bytes = endpoint
        .prompt_fields()
        .iter()
        .filter_map(|field| object.get(*field))
        .map(tokens::text_bytes)
        .sum();
    let prompt_tokens = tokens::estimate(prompt_bytes);
    match endpoint {
        Endpoint::Chat | Endpoint::Completions => {
            let request: GenerateRequest = typed(&value)?;
            match endpoint {
                Endpoint::Chat if request.messages.is_none() => {
                    return Err("messages: missing field".into())
                }
                Endpoint::Completions if request.prompt.is_none() => {
                    return Err("prompt: missing field".into())
                }
                _ => {}
            }
            Ok(Job::Generate(Generate {
                model: request.model,
                prompt_tokens,
                cap: [request.max_tokens, request.max_completion_tokens]
                    .into_iter()
                    .flatten()
                    .min(),
                stream: request.stream.unwrap_or(false),
                include_usage: request
                    .stream_options
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
            }))
        }
        Endpoint::Embeddings => {
            let request: EmbedRequest = typed(&value)?;
            let dimensions = request.dimensions.unwrap_or(embedding::DEFAULT_DIMENSIONS);
            if !(1..=MAX_DIMENSIONS).contains(&dimensions) {
                return Err(format!("dimensions: must be 1..={MAX_DIMENSIONS}"));
            }
            Ok(Job::Embed(Embed {
                model: request.model,
                prompt_tokens,
                items: request.input.items(),
                dimensions,
                base64: request.encoding_format.unwrap_or_default() == EncodingFormat::Base64,
            }))
        }
    }
}

/// The request's fields, typed; the error names the field path.
fn typed<'a, T: Deserialize<'a>>(value: &'a Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string() {
        path if path == "." => e.inner().to_string(),
        path => format!("{path}: {}", e.inner()),
    })
}

/// `usage` of a generated answer.
pub fn usage(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    })
}

/// What a streamed chunk carries.
#[derive(Debug, Clone, Copy)]
pub enum Delta<'a> {
    /// Chat's first chunk: the role, no text yet.
    Role,
    /// A piece of the answer.
    Text(&'a str),
    /// The last chunk, with the finish reason and no text.
    End(Finish),
}

/// The answer to one generation request: its id and model, shared by every chunk.
#[derive(Debug, Clone)]
pub struct Reply {
    pub chat: bool,
    pub id: String,
    pub model: String,
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.chat, chunk) {
            (true, false) => "chat.completion",
            (true, true) => "chat.completion.chunk",
            (false, _) => "text_completion",
        }
    }

    fn envelope(&self, chunk: bool, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": 0,
            "model": self.model,
            "choices": choices,
        })
    }

    /// The whole answer, not streamed.
    pub fn completion(&self, text: &str, finish: Finish, usage: Value) -> Value {
        let choice = if self.chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text},
                   "logprobs": null, "finish_reason": finish.reason()})
        } else {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish.reason()})
        };
        let mut body = self.envelope(false, json!([choice]));
        body["usage"] = usage;
        body
    }

    /// One streamed chunk; with `include_usage` it says `"usage": null`, as OpenAI does.
    pub fn chunk(&self, delta: Delta<'_>, include_usage: bool) -> Value {
        let finish = match delta {
            Delta::End(finish) => Value::from(finish.reason()),
            _ => Value::Null,
        };
        let choice = if self.chat {
            let delta = match delta {
                Delta::Role => json!({"role": "assistant", "content": ""}),
                Delta::Text(text) => json!({"content": text}),
                Delta::End(_) => json!({}),
            };
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
        } else {
            let text = match delta {
                Delta::Text(text) => text,
                Delta::Role | Delta::End(_) => "",
            };
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
        };
        let mut body = self.envelope(true, json!([choice]));
        if include_usage {
            body["usage"] = Value::Null;
        }
        body
    }

    /// The chunk after the last one when the client asked `stream_options.include_usage`.
    pub fn usage_chunk(&self, usage: Value) -> Value {
        let mut body = self.envelope(true, json!([]));
        body["usage"] = usage;
        body
    }
}

/// The answer to an embeddings request.
pub fn embeddings(embed: &Embed, model: &str) -> Value {
    let data: Vec<Value> = embed
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let vector = embedding::vector(item, embed.dimensions);
            let embedding = if embed.base64 {
                Value::from(embedding::base64(&vector))
            } else {
                Value::from(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": embed.prompt_tokens, "total_tokens": embed.prompt_tokens},
    })
}

/// `GET /v1/models`.
pub fn models(model: &str) -> Value {
    json!({"object": "list", "data": [
        {"id": model, "object": "model", "created": 0, "owned_by": "fairgate"}
    ]})
}

/// The OpenAI error body.
pub fn error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(endpoint: Endpoint, body: &str) -> Generate {
        match parse(endpoint, body.as_bytes()) {
            Ok(Job::Generate(g)) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chat_prompt_is_the_text_of_its_messages_and_tools() {
        // 5 + 11 + 1 (the image url) + 6 + 3 (the tool's description) = 26 → 7 tokens.
        let g = generate(
            Endpoint::Chat,
            r#"{"messages":[{"role":"system","content":"Be ok"},
                {"role":"user","content":[{"type":"text","text":"hello world"},
                  {"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"again!"}]},
                {"role":"assistant","content":null}],
              "tools":[{"type":"function","function":{"name":"f","description":"abc"}}],
              "max_tokens":7,"max_completion_tokens":9,"stream":true,
              "stream_options":{"include_usage":true},"temperature":0.2}"#,
        );
        assert_eq!(g.prompt_tokens, 7);
        assert_eq!(g.cap, Some(7), "the smallest cap binds");
        assert!(g.stream && g.include_usage);
    }

    #[test]
    fn completion_prompts_may_be_texts_or_token_ids() {
        let tokens = |prompt: &str| {
            generate(Endpoint::Completions, &format!(r#"{{"prompt":{prompt}}}"#)).prompt_tokens
        };
        assert_eq!(tokens(r#""abcdefgh""#), 2);
        assert_eq!(tokens(r#"["abc","defgh"]"#), 2);
        assert_eq!(tokens("[1,2,3]"), 3);
        assert_eq!(tokens("[[1,2],[3]]"), 3);
        assert_eq!(tokens(r#""""#), 1);
        let with_suffix = generate(Endpoint::Completions, r#"{"prompt":"abcd","suffix":"e"}"#);
        assert_eq!(with_suffix.prompt_tokens, 2);
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field() {
        let err = |endpoint, body: &str| parse(endpoint, body.as_bytes()).unwrap_err();
        assert!(err(Endpoint::Chat, "not json").starts_with("the request body is not valid JSON"));
        assert!(err(Endpoint::Chat, "[]").ends_with("must be a JSON object"));
        assert!(err(Endpoint::Chat, "{}").starts_with("messages"));
        assert!(
            err(Endpoint::Chat, r#"{"messages":[],"max_tokens":"x"}"#).starts_with("max_tokens")
        );
        assert!(err(Endpoint::Chat, r#"{"messages":[5]}"#).starts_with("messages[0]"));
        assert!(err(Endpoint::Completions, r#"{"messages":[]}"#).starts_with("prompt"));
        assert!(err(Endpoint::Embeddings, "{}").contains("`input`"));
        assert!(
            err(Endpoint::Embeddings, r#"{"input":"x","dimensions":0}"#).starts_with("dimensions")
        );
        assert!(err(
            Endpoint::Embeddings,
            r#"{"input":"x","encoding_format":"hex"}"#
        )
        .starts_with("encoding_format"));
    }

    #[test]
    fn chunks_carry_role_text_and_finish_reason() {
        let reply = Reply {
            chat: true,
            id: "c-1".into(),
            model: "m".into(),
        };
        assert_eq!(
            reply.chunk(Delta::Role, false)["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let end = reply.chunk(Delta::End(Finish::Length), true);
        assert_eq!(end["choices"][0]["finish_reason"], "length");
        assert!(end["usage"].is_null() && end.get("usage").is_some());
        let text = Reply {
            chat: false,
            ..reply
        };
        assert_eq!(
            text.chunk(Delta::Text(" tok4"), false)["choices"][0]["text"],
            " tok4"
        );
        assert_eq!(text.usage_chunk(usage(1, 2, 0))["choices"], json!([]));
    }
}
