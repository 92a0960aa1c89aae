//! Token usage of an answer: the `usage` object of a JSON answer, or of the final
//! chunk of an SSE stream (asked for with `stream_options.include_usage`).
//!
//! The stream is read incrementally: only the current, unfinished line is kept (at
//! most `MAX_LINE` bytes; a longer line is skipped), each complete `data:` line is
//! parsed on its own, so a stream split anywhere between reads gives the same result.

use serde_json::Value;

/// Tokens of one answer, as the model server counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The `usage` of an OpenAI response object or stream chunk, where present.
pub fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    let count = |k: &str| u.get(k).and_then(Value::as_u64);
    Some(Usage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens").unwrap_or(0),
    })
}

/// The usage of a whole JSON answer body.
pub fn json_usage(body: &[u8]) -> Option<Usage> {
    usage_of(&serde_json::from_slice(body).ok()?)
}

const MAX_LINE: usize = 1 << 20;

/// An SSE stream, fed as it arrives.
#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    skipping: bool,
    /// The last `usage` seen.
    pub usage: Option<Usage>,
    /// `data:` events that carried choices (content chunks).
    pub chunks: u64,
    /// `data: [DONE]` arrived.
    pub done: bool,
}

impl SseReader {
    pub fn feed(&mut self, bytes: &[u8]) {
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            if !self.skipping {
                if self.line.len() + body.len() > MAX_LINE {
                    self.skipping = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(body);
                }
            }
            if ends {
                if !self.skipping {
                    let line = std::mem::take(&mut self.line);
                    self.event_line(&line);
                }
                self.skipping = false;
            }
        }
    }

    /// The stream ended: a last line without its newline still counts.
    pub fn finish(&mut self) {
        if !self.skipping && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.event_line(&line);
        }
    }

    fn event_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(u) = usage_of(&v) {
            self.usage = Some(u);
        }
        if v.get("choices")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty())
        {
            self.chunks += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn the_final_usage_chunk_of_a_stream_is_read() {
        let mut r = SseReader::default();
        r.feed(STREAM.as_bytes());
        r.finish();
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 2
            })
        );
        assert_eq!(r.chunks, 3);
        assert!(r.done);
    }

    #[test]
    fn a_stream_split_at_every_byte_gives_the_same_result() {
        let mut r = SseReader::default();
        for b in STREAM.replace('\n', "\r\n").as_bytes() {
            r.feed(std::slice::from_ref(b));
        }
        r.finish();
        assert_eq!(r.usage.map(|u| u.completion_tokens), Some(2));
        assert_eq!(r.chunks, 3);
        assert!(r.done);
    }

    #[test]
    fn a_stream_without_usage_or_done_reports_neither() {
        let mut r = SseReader::default();
        r.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: not json\n\n: comment\n\ndata: {\"choices\":[{\"delta\"");
        r.finish();
        assert_eq!(r.usage, None);
        assert_eq!(r.chunks, 1);
        assert!(!r.done);
    }

    #[test]
    fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let mut r = SseReader::default();
        r.feed(b"data: ");
        r.feed(&vec![b'x'; MAX_LINE + 10]);
        r.feed(b"\ndata: [DONE]\n");
        assert!(r.done);
        assert_eq!(r.chunks, 0);
    }

    #[test]
    fn a_json_answer_gives_its_usage() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        assert_eq!(
            json_usage(body),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 7
            })
        );
        assert_eq!(json_usage(b"{\"error\":{}}"), None);
        assert_eq!(json_usage(b"not json"), None);
    }
}
