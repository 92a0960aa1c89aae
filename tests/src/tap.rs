//! A tap between Envoy and an upstream, on 127.0.0.1: it relays every byte both ways
//! and counts, at the wire, what reaches the upstream: each connection Envoy opens and
//! each request head that crosses it, partial requests included (a head whose body
//! never follows, a request reset midway). The upstream's own handlers see a request
//! only once it parses; the tap sees the bytes, so it can tell whether a refused
//! request reached the upstream at all.
//!
//! Heads are read from the HTTP/1.1 byte stream as it passes: a head ends at its
//! blank line; its body is skipped by `content-length` or by its chunks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use fairgate_mock::{MockConfig, MockHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::envoy::{Envoy, EnvoyConfig};

/// Envoy with fairgate in front of a tap, in front of a fast mock model server.
pub struct TappedGateway {
    pub envoy: Envoy,
    pub tap: Tap,
    pub mock: MockHandle,
}

impl TappedGateway {
    /// Starts the three with `plugin_config`, `workers` Envoy workers, and the wasm
    /// filter's `allow_on_headers_stop_iteration` as `hold_headers`.
    pub async fn start(plugin_config: String, workers: u32, hold_headers: bool) -> Self {
        let mock = MockConfig {
            slots: 16,
            prefill_ms: 1,
            token_ms: 1,
            ..MockConfig::default()
        };
        let mock = fairgate_mock::spawn(mock, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("mock");
        let tap = Tap::start(mock.addr).await;
        let mut config = EnvoyConfig::new(plugin_config)
            .concurrency(workers)
            .upstream("mock", tap.addr);
        if !hold_headers {
            config = config.without_header_hold();
        }
        let envoy = Envoy::start(&config);
        Self { envoy, tap, mock }
    }
}

/// One request head as it reached the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub path: String,
    /// Every header, lower-case names, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The tenant fairgate forwarded (`x-fairgate-tenant`), or "".
    pub fn tenant(&self) -> &str {
        self.header("x-fairgate-tenant").unwrap_or("")
    }
}

#[derive(Debug, Default)]
struct Counts {
    connections: u64,
    heads: Vec<Head>,
    /// Bytes that crossed towards the upstream without completing a head.
    partial_bytes: u64,
}

/// A running tap; stops with the test's runtime.
#[derive(Clone)]
pub struct Tap {
    pub addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Tap {
    /// Starts a tap on a free port of 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tap");
        let addr = listener.local_addr().expect("tap addr");
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let shared = counts.clone();
        tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                if let Ok(mut c) = shared.lock() {
                    c.connections += 1;
                }
                tokio::spawn(relay(downstream, upstream, shared.clone()));
            }
        });
        Tap { addr, counts }
    }

    /// Connections opened to the upstream so far.
    pub fn connections(&self) -> u64 {
        self.counts
            .lock()
            .map(|c| c.connections)
            .unwrap_or_default()
    }

    /// Every request head that reached the upstream so far.
    pub fn heads(&self) -> Vec<Head> {
        self.counts
            .lock()
            .map(|c| c.heads.clone())
            .unwrap_or_default()
    }

    /// Request heads of `tenant` that reached the upstream.
    pub fn heads_of(&self, tenant: &str) -> usize {
        self.heads().iter().filter(|h| h.tenant() == tenant).count()
    }

    /// Bytes towards the upstream that are not (yet) part of a whole head.
    pub fn partial_bytes(&self) -> u64 {
        self.counts
            .lock()
            .map(|c| c.partial_bytes)
            .unwrap_or_default()
    }
}

async fn relay(downstream: TcpStream, upstream: SocketAddr, counts: Arc<Mutex<Counts>>) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut down_read, mut down_write) = downstream.into_split();
    let (mut up_read, mut up_write) = up.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut up_read, &mut down_write).await;
        let _ = down_write.shutdown().await;
    });
    let mut reader = HeadReader::default();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match down_read.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let heads = reader.feed(&chunk[..n]);
        if let Ok(mut c) = counts.lock() {
            c.heads.extend(heads);
        }
        if up_write.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    if let Ok(mut c) = counts.lock() {
        c.partial_bytes += reader.pending_head_bytes() as u64;
    }
    let _ = up_write.shutdown().await;
    let _ = answers.await;
}

/// Where the byte stream of one connection stands.
#[derive(Debug, Default)]
enum Part {
    #[default]
    Head,
    /// This many bytes of a body (or, `chunked`, of a chunk and its CRLF) still to skip.
    Skip { left: u64, chunked: bool },
    /// In a chunked body: the next chunk's size line.
    ChunkSize,
    /// After the last chunk: trailer lines up to a blank one.
    Trailers,
}

/// Reads request heads out of an HTTP/1.1 byte stream, skipping bodies.
#[derive(Debug, Default)]
struct HeadReader {
    part: Part,
    buf: Vec<u8>,
}

impl HeadReader {
    fn pending_head_bytes(&self) -> usize {
        match self.part {
            Part::Head => self.buf.len(),
            _ => 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Head> {
        self.buf.extend_from_slice(bytes);
        let mut heads = Vec::new();
        loop {
            match self.part {
                Part::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        return heads;
                    };
                    let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                    let Some((head, part)) = parse_head(&raw) else {
                        // Not HTTP: count nothing more on this connection.
                        self.buf.clear();
                        return heads;
                    };
                    heads.push(head);
                    self.part = part;
                }
                Part::Skip { left, chunked } => {
                    let n = left.min(self.buf.len() as u64);
                    self.buf.drain(..n as usize);
                    if n < left {
                        self.part = Part::Skip {
                            left: left - n,
                            chunked,
                        };
                        return heads;
                    }
                    self.part = if chunked { Part::ChunkSize } else { Part::Head };
                }
                Part::ChunkSize => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        return heads;
                    };
                    let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                    let size = std::str::from_utf8(&line[..end])
                        .ok()
                        .and_then(|l| l.split(';').next())
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                        .unwrap_or(0);
                    self.part = match size {
                        0 => Part::Trailers,
                        n => Part::Skip {
                            left: n + 2,
                            chunked: true,
                        },
                    };
                }
                Part::Trailers => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        return heads;
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        self.part = Part::Head;
                    }
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A whole head (through its blank line), and what follows it.
fn parse_head(raw: &[u8]) -> Option<(Head, Part)> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let head = Head {
        method: request.method.unwrap_or("").to_string(),
        path: request.path.unwrap_or("").to_string(),
        headers,
    };
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let part = match (chunked, length) {
        (true, _) => Part::ChunkSize,
        (false, Some(n)) if n > 0 => Part::Skip {
            left: n,
            chunked: false,
        },
        _ => Part::Head,
    };
    Some((head, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_across_bodies_of_both_kinds_and_any_cut() {
        let stream = b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nx-fairgate-tenant: t1\r\n\r\nhello\
GET /b HTTP/1.1\r\nhost: x\r\n\r\n\
POST /c HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
POST /d HTTP/1.1\r\ncontent-length: 9\r\n\r\n";
        for cut in [1, 2, 7, 64, stream.len()] {
            let mut reader = HeadReader::default();
            let heads: Vec<Head> = stream
                .chunks(cut)
                .flat_map(|piece| reader.feed(piece))
                .collect();
            let paths: Vec<&str> = heads.iter().map(|h| h.path.as_str()).collect();
            assert_eq!(
                paths,
                ["/a", "/b", "/c", "/d"],
                "cut into {cut}-byte pieces"
            );
            assert_eq!(heads[0].tenant(), "t1");
            assert_eq!(heads[3].header("content-length"), Some("9"));
        }
    }

    #[test]
    fn a_head_cut_short_is_counted_as_partial_bytes() {
        let mut reader = HeadReader::default();
        assert!(reader.feed(b"POST /a HTTP/1.1\r\nhost").is_empty());
        assert_eq!(reader.pending_head_bytes(), 22);
    }
}
