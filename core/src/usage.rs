//! The response side of token accounting: the real `usage` of an answer, read from a
//! JSON body or, incrementally, from an SSE stream (SPEC section 3).
//!
//! `SseScanner` reads a stream chunk by chunk as Envoy hands it over, keeping only
//! the bytes of the event not yet complete. It finds the usage (the final chunk of a
//! chat or completions stream, `response.completed` of a Responses stream), counts
//! the chunks that carried answer text (what was delivered, for streams that end
//! without usage), and can strip the usage chunk that fairgate asked for on the
//! client's behalf. Every event it passes on is byte-identical to what it received.

use serde::Deserialize;
use serde_json::Value;

/// Tokens an answer used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Input tokens served from the prompt cache (part of `input`).
    pub cached: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Reads an OpenAI `usage` object: chat and completions
    /// (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`)
    /// or Responses (`input_tokens`, `output_tokens`, `input_tokens_details`).
    pub fn from_value(usage: &Value) -> Option<Self> {
        let object = usage.as_object()?;
        let count = |field: &str| object.get(field).and_then(Value::as_u64);
        let cached = |details: &str| {
            object
                .get(details)
                .and_then(|d| d.get("cached_tokens"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        if let Some(input) = count("prompt_tokens") {
            return Some(Self {
                input,
                output: count("completion_tokens").unwrap_or(0),
                cached: cached("prompt_tokens_details"),
            });
        }
        let input = count("input_tokens")?;
        Some(Self {
            input,
            output: count("output_tokens").unwrap_or(0),
            cached: cached("input_tokens_details"),
        })
    }

    /// The usage in a whole JSON answer (`usage`, or `response.usage`).
    pub fn from_json_body(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        value
            .get("usage")
            .or_else(|| value.get("response").and_then(|r| r.get("usage")))
            .and_then(Self::from_value)
    }
}

/// What to send on in place of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// The chunk as it came.
    Unchanged,
    /// These bytes instead (events held back or stripped).
    Replace(Vec<u8>),
}

/// The most bytes one event may hold before the scanner gives up on the stream (and
/// passes everything on untouched from then on).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Reads an SSE stream incrementally.
#[derive(Debug, Default)]
pub struct SseScanner {
    /// Strip usage-only chunks (fairgate asked for them, the client did not).
    strip_usage: bool,
    /// Bytes of the event not yet complete.
    pending: Vec<u8>,
    /// Where in `pending` the line scan resumes.
    scanned: usize,
    /// An event too large: everything passes on untouched.
    gave_up: bool,
    pub usage: Option<Usage>,
    /// Chunks that carried answer text.
    pub content_chunks: u64,
    /// `data: [DONE]` arrived.
    pub done: bool,
}

/// What is read of an event that may carry usage (the rest is told from its bytes).
#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    response: Option<ResponseObject>,
}

#[derive(Deserialize)]
struct ResponseObject {
    #[serde(default)]
    usage: Option<Value>,
}

impl SseScanner {
    pub fn new(strip_usage: bool) -> Self {
        Self {
            strip_usage,
            ..Self::default()
        }
    }

    /// Reads the next chunk; says what to send on in its place. `end`: the stream
    /// ends with this chunk (what is held back is released).
    pub fn feed(&mut self, chunk: &[u8], end: bool) -> Pass {
        if self.gave_up {
            return Pass::Unchanged;
        }
        let held_before = self.pending.len();
        self.pending.extend_from_slice(chunk);
        let mut out: Vec<u8> = Vec::new();
        let mut event_start = 0;
        let mut changed = false;
        let mut line_start = self.line_start();
        let mut i = self.scanned;
        while let Some(nl) = self.pending[i..].iter().position(|b| *b == b'\n') {
            let line_end = i + nl;
            let line = trim_cr(&self.pending[line_start..line_end]);
            i = line_end + 1;
            if line.is_empty() {
                // An event ends here.
                let keep = self.on_event(event_start, line_start);
                if keep {
                    out.extend_from_slice(&self.pending[event_start..i]);
                } else {
                    changed = true;
                }
                event_start = i;
            }
            line_start = i;
        }
        if end || self.pending.len() - event_start > MAX_EVENT_BYTES {
            // The rest goes on as it is: the stream ends, or the event is too large.
            if !end {
                self.gave_up = true;
            } else if event_start < self.pending.len() {
                // A last event with no blank line after it still counts.
                self.on_event(event_start, self.pending.len());
            }
            out.extend_from_slice(&self.pending[event_start..]);
            event_start = self.pending.len();
        }
        let rest = self.pending.split_off(event_start);
        let complete = std::mem::replace(&mut self.pending, rest);
        self.scanned = self.pending.len();
        if !self.strip_usage {
            return Pass::Unchanged;
        }
        // Only a held-back start, a held-back end or a stripped event changes the
        // chunk; otherwise it goes on untouched (no copy for the host).
        let released_exactly_this_chunk = held_before == 0
            && self.pending.is_empty()
            && !changed
            && complete.len() == chunk.len();
        if released_exactly_this_chunk {
            Pass::Unchanged
        } else {
            Pass::Replace(out)
        }
    }

    /// Where the last, unfinished line of `pending` starts.
    fn line_start(&self) -> usize {
        self.pending[..self.scanned]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
    }

    /// Reads the event in `pending[start..end]`; returns whether it goes on.
    fn on_event(&mut self, start: usize, end: usize) -> bool {
        let mut data: Vec<u8> = Vec::new();
        let mut lines = 0;
        for line in self.pending[start..end].split(|b| *b == b'\n') {
            let line = trim_cr(line);
            if let Some(rest) = line.strip_prefix(b"data:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if lines > 0 {
                    data.push(b'\n');
                }
                data.extend_from_slice(rest);
                lines += 1;
            }
        }
        if lines == 0 {
            return true;
        }
        if data.as_slice() == b"[DONE]" {
            self.done = true;
            return true;
        }
        // Most events are a chunk of answer with no usage: told apart without a parse.
        if !may_carry_usage(&data) {
            if carries_text(&data) {
                self.content_chunks += 1;
            }
            return true;
        }
        let Ok(event) = serde_json::from_slice::<Event>(&data) else {
            return true;
        };
        let mut usage = event.usage.as_ref().and_then(Usage::from_value);
        if let Some(r) = &event.response {
            usage = usage.or_else(|| r.usage.as_ref().and_then(Usage::from_value));
        }
        // A Responses event says by its type whether it is answer text.
        let text = match event.kind.as_deref() {
            Some(k) => k.starts_with("response.output") && k.ends_with(".delta"),
            None => carries_text(&data),
        };
        if text {
            self.content_chunks += 1;
        }
        if let Some(u) = usage {
            self.usage = Some(u);
            let no_choices = event.choices.as_ref().is_some_and(Vec::is_empty);
            let usage_only = no_choices && event.kind.is_none();
            if self.strip_usage && usage_only {
                return false;
            }
        }
        true
    }
}

/// What follows the JSON key `"key":` in `data`, at each place it occurs (a key
/// inside a string value would have its quotes escaped, so it is not found).
fn values_of<'a>(data: &'a [u8], key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        while from < data.len() {
            let rest = &data[from..];
            let at = rest.windows(key.len() + 2).position(|w| {
                w[0] == b'"' && &w[1..=key.len()] == key && w[key.len() + 1] == b'"'
            })?;
            from += at + key.len() + 2;
            let after = trim_start(&data[from..]);
            if let Some(value) = after.strip_prefix(b":") {
                return Some(trim_start(value));
            }
        }
        None
    })
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &bytes[n..]
}

/// Whether an event may hold a usage object or be a Responses API event: those are
/// parsed; every other event is an answer chunk whose usage is `null` or absent.
fn may_carry_usage(data: &[u8]) -> bool {
    values_of(data, b"usage").any(|v| v.first() == Some(&b'{'))
        || values_of(data, b"type").next().is_some()
        || values_of(data, b"response").next().is_some()
}

/// Whether an answer chunk carries text: a non-empty `content`, `text` or
/// `reasoning_content` string, or `tool_calls`.
fn carries_text(data: &[u8]) -> bool {
    let non_empty = |key: &'static [u8]| {
        values_of(data, key).any(|v| v.len() > 1 && v[0] == b'"' && v[1] != b'"')
    };
    non_empty(b"content")
        || non_empty(b"text")
        || non_empty(b"reasoning_content")
        || values_of(data, b"tool_calls").any(|v| v.first() == Some(&b'['))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn usage_is_read_from_both_apis() {
        let chat = json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4}});
        assert_eq!(
            Usage::from_value(&chat),
            Some(Usage {
                input: 10,
                output: 5,
                cached: 4
            })
        );
        let responses = json!({"input_tokens": 3, "output_tokens": 9,
            "input_tokens_details": {"cached_tokens": 1}});
        assert_eq!(
            Usage::from_value(&responses),
            Some(Usage {
                input: 3,
                output: 9,
                cached: 1
            })
        );
        assert_eq!(Usage::from_value(&json!({"total_tokens": 3})), None);
        assert_eq!(Usage::from_value(&json!(null)), None);
        let body = json!({"id": "x", "usage": chat}).to_string();
        assert_eq!(
            Usage::from_json_body(body.as_bytes()).map(|u| u.total()),
            Some(15)
        );
        let body = json!({"response": {"usage": responses}}).to_string();
        assert_eq!(
            Usage::from_json_body(body.as_bytes()).map(|u| u.total()),
            Some(12)
        );
        assert_eq!(
            Usage::from_json_body(b"{\"usage\": {\"prompt_tokens\": -1}}"),
            None
        );
        assert_eq!(Usage::from_json_body(b"garbage"), None);
    }

    fn chunk(content: &str) -> String {
        let c = json!({"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": content}}]});
        format!("data: {c}\n\n")
    }

    fn usage_chunk(input: u64, output: u64) -> String {
        let c = json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": input, "completion_tokens": output,
                      "total_tokens": input + output}});
        format!("data: {c}\n\n")
    }

    fn stream(with_usage: bool) -> String {
        let mut s = String::new();
        s += &format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        );
        for w in ["Hello", " there", "!"] {
            s += &chunk(w);
        }
        if with_usage {
            s += &usage_chunk(7, 3);
        }
        s += "data: [DONE]\n\n";
        s
    }

    /// Feeds `bytes` in pieces cut at `cuts`; returns what was passed on.
    fn run(scanner: &mut SseScanner, bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(bytes.len());
        for (i, end) in bounds.iter().enumerate() {
            let piece = &bytes[start..*end];
            match scanner.feed(piece, i + 1 == bounds.len()) {
                Pass::Unchanged => out.extend_from_slice(piece),
                Pass::Replace(b) => out.extend_from_slice(&b),
            }
            start = *end;
        }
        out
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stream_with_usage_is_passed_on_untouched() {
        let s = stream(true);
        let mut scanner = SseScanner::new(false);
        let out = run(&mut scanner, s.as_bytes(), &[]);
        assert_eq!(out, s.as_bytes());
        assert_eq!(
            scanner.usage,
            Some(Usage {
                input: 7,
                output: 3,
                cached: 0
            })
        );
        assert_eq!(
            scanner.content_chunks, 3,
            "the empty role chunk carries no text"
        );
        assert!(scanner.done);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_injected_usage_chunk_is_stripped_and_the_rest_kept_byte_for_byte() {
        let with = stream(true);
        let without = stream(false);
        let mut scanner = SseScanner::new(true);
        let out = run(&mut scanner, with.as_bytes(), &[]);
        assert_eq!(String::from_utf8(out).unwrap(), without);
        assert_eq!(scanner.usage.map(|u| u.total()), Some(10));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stream_split_at_every_byte_boundary_reads_the_same() {
        for strip in [false, true] {
            let s = stream(true);
            let want = if strip { stream(false) } else { s.clone() };
            let cuts: Vec<usize> = (1..s.len()).collect();
            let mut scanner = SseScanner::new(strip);
            let out = run(&mut scanner, s.as_bytes(), &cuts);
            assert_eq!(String::from_utf8(out).unwrap(), want, "strip {strip}");
            assert_eq!(scanner.usage.map(|u| u.total()), Some(10));
            assert_eq!(scanner.content_chunks, 3);
            assert!(scanner.done);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_two_way_split_reads_the_same() {
        let s = stream(true).replace("\n", "\r\n");
        for cut in 1..s.len() {
            let mut scanner = SseScanner::new(true);
            let out = run(&mut scanner, s.as_bytes(), &[cut]);
            assert_eq!(
                out,
                stream(false).replace("\n", "\r\n").as_bytes(),
                "cut at {cut}"
            );
            assert_eq!(scanner.usage.map(|u| u.total()), Some(10), "cut at {cut}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn whole_events_per_chunk_pass_without_a_copy() {
        let mut scanner = SseScanner::new(true);
        assert_eq!(scanner.feed(chunk("a").as_bytes(), false), Pass::Unchanged);
        assert_eq!(
            scanner.feed(usage_chunk(1, 1).as_bytes(), false),
            Pass::Replace(Vec::new())
        );
        assert_eq!(scanner.feed(b"data: [DONE]\n\n", true), Pass::Unchanged);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stream_cut_short_counts_what_was_delivered() {
        let s = stream(true);
        let cut = s.find("data: {\"choices\":[],").unwrap_or(s.len() / 2);
        let mut scanner = SseScanner::new(false);
        scanner.feed(&s.as_bytes()[..cut], false);
        assert_eq!(scanner.usage, None);
        assert_eq!(scanner.content_chunks, 3);
        assert!(!scanner.done);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn responses_streams_report_usage_in_their_completed_event() {
        let s = format!(
            "event: response.output_text.delta\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
            json!({"type": "response.output_text.delta", "delta": "Hi"}),
            json!({"type": "response.completed",
                   "response": {"usage": {"input_tokens": 4, "output_tokens": 2}}}),
        );
        let mut scanner = SseScanner::new(true);
        let out = run(&mut scanner, s.as_bytes(), &[5, 40]);
        assert_eq!(
            out,
            s.as_bytes(),
            "nothing stripped from a Responses stream"
        );
        assert_eq!(
            scanner.usage,
            Some(Usage {
                input: 4,
                output: 2,
                cached: 0
            })
        );
        assert_eq!(scanner.content_chunks, 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn garbage_passes_through_and_counts_nothing() {
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let mut scanner = SseScanner::new(true);
        let cuts: Vec<usize> = (1..junk.len()).step_by(97).collect();
        let out = run(&mut scanner, &junk, &cuts);
        assert_eq!(out, junk);
        assert_eq!((scanner.usage, scanner.content_chunks), (None, 0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_endless_event_is_given_up_on_without_holding_it() {
        let mut scanner = SseScanner::new(true);
        let big = vec![b'x'; MAX_EVENT_BYTES / 2 + 1];
        let first = scanner.feed(&big, false);
        assert_eq!(
            first,
            Pass::Replace(Vec::new()),
            "held while it may still end"
        );
        match scanner.feed(&big, false) {
            Pass::Replace(b) => assert_eq!(b.len(), big.len() * 2, "released whole"),
            Pass::Unchanged => panic!("the held bytes must be released"),
        }
        assert_eq!(scanner.feed(b"data: 1\n\n", false), Pass::Unchanged);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn answer_chunks_are_told_apart_without_a_parse_as_a_parse_would() {
        let cases: [(&str, bool, bool); 9] = [
            (
                r#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#,
                false,
                true,
            ),
            (
                r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
                false,
                false,
            ),
            (
                r#"{"choices" : [ {"delta" : {"content" : "x"} } ]}"#,
                false,
                true,
            ),
            (r#"{"choices":[{"text":"tok"}]}"#, false, true),
            (
                r#"{"choices":[{"delta":{"tool_calls":[{"id":"c"}]}}]}"#,
                false,
                true,
            ),
            (
                r#"{"choices":[{"delta":{"content":"say \"usage\": {1}"}}]}"#,
                false,
                true,
            ),
            (r#"{"choices":[],"usage":{"prompt_tokens":1}}"#, true, false),
            (
                r#"{"choices":[], "usage" :  {"prompt_tokens":1}}"#,
                true,
                false,
            ),
            (
                r#"{"type":"response.output_text.delta","delta":"x"}"#,
                true,
                false,
            ),
        ];
        for (data, parsed, text) in cases {
            assert_eq!(may_carry_usage(data.as_bytes()), parsed, "{data}");
            if !parsed {
                assert_eq!(carries_text(data.as_bytes()), text, "{data}");
            }
        }
    }
}
