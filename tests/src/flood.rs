//! OpenAI chat requests in every shape a client sends them (JSON or streamed, with a
//! `content-length` or chunked, a chunked body followed by trailers), and a flood of them from one tenant: what the
//! isolation tests and `isolation-bench` send.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shapes of a chat-completion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Json,
    Stream,
    /// Without `content-length`: chunked.
    ChunkedJson,
    ChunkedStream,
    /// Chunked, then a trailer field (HTTP/1.1 trailers reach filters only where
    /// the listener has `enable_trailers`; HTTP/2 ones always do).
    Trailers,
}

pub const BODIES: [Body; 5] = [
    Body::Json,
    Body::Stream,
    Body::ChunkedJson,
    Body::ChunkedStream,
    Body::Trailers,
];

impl Body {
    fn streamed(self) -> bool {
        matches!(self, Body::Stream | Body::ChunkedStream)
    }
}

/// A chat-completion body: "hi there", up to `max_tokens` of answer.
pub fn chat(max_tokens: u64, stream: bool) -> Vec<u8> {
    json!({"model": "fairgate-mock-1",
           "messages": [{"role": "user", "content": "hi there"}],
           "max_tokens": max_tokens, "stream": stream})
    .to_string()
    .into_bytes()
}

/// POSTs a chat completion of `tenant` (`x-tenant-id`) to `url` in the shape `body`,
/// asking the mock for an answer of `answer` tokens; reads the whole answer and
/// returns its status.
pub async fn ask(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    body: Body,
    max_tokens: u64,
    answer: u64,
) -> u16 {
    let answer = answer.to_string();
    let headers = [
        ("x-tenant-id", tenant),
        ("x-mock-completion-tokens", answer.as_str()),
    ];
    let bytes = chat(max_tokens, body.streamed());
    match body {
        Body::ChunkedJson | Body::ChunkedStream => {
            return post_chunked(url, &bytes, &headers, None).await
        }
        Body::Trailers => return post_chunked(url, &bytes, &headers, Some("x-trailer: 1")).await,
        Body::Json | Body::Stream => {}
    }
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(bytes);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    status
}

/// POSTs `body` to `url` with `headers` and no `content-length` (two chunks, then
/// `trailer`, a header line, if any) on a connection of its own; reads the whole
/// answer and returns its status.
pub async fn post_chunked(
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    trailer: Option<&str>,
) -> u16 {
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect to Envoy");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let (first, second) = body.split_at(body.len() / 2);
    for part in [first, second] {
        request.push_str(&format!("{:x}\r\n", part.len()));
        request.push_str(&String::from_utf8_lossy(part));
        request.push_str("\r\n");
    }
    request.push_str("0\r\n");
    if let Some(line) = trailer {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send to Envoy");
    let mut answer = Vec::new();
    // Read to the answer's end, not the connection's: Envoy closes a connection whose
    // request it answered early only after its delayed-close timeout.
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !answer_complete(&answer) {
            match stream.read_buf(&mut answer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    read.await.expect("an answer within 20 s");
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"))
}

/// Whether `answer` holds a whole HTTP/1.1 response (by its length, or its last chunk).
fn answer_complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let body = &answer[end + 4..];
    match head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(length) => body.len() >= length,
        None => body.ends_with(b"0\r\n\r\n"),
    }
}

/// What one tenant's flood got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub served: u64,
    pub refused: u64,
    /// Any other status, in order.
    pub other: Vec<u16>,
}

/// `clients` clients of `tenant`, each sending one request after another for
/// `duration`, the shapes in turn (each client starting at another): requests of
/// `max_tokens` answered with `answer` tokens. 200 is served, 429 refused.
pub async fn flood(
    url: &str,
    tenant: &str,
    clients: usize,
    duration: Duration,
    max_tokens: u64,
    answer: u64,
) -> Outcome {
    let until = Instant::now() + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|first| {
            let (url, tenant) = (url.to_string(), tenant.to_string());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut outcome = Outcome::default();
                for shape in BODIES.iter().cycle().skip(first) {
                    if Instant::now() >= until {
                        break;
                    }
                    match ask(&client, &url, &tenant, *shape, max_tokens, answer).await {
                        200 => outcome.served += 1,
                        429 => outcome.refused += 1,
                        status => outcome.other.push(status),
                    }
                }
                outcome
            })
        })
        .collect();
    let mut total = Outcome::default();
    for task in tasks {
        let o = task.await.expect("flood client");
        total.served += o.served;
        total.refused += o.refused;
        total.other.extend(o.other);
    }
    total
}
