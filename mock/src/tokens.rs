//! Token counting and the answer text: no tokenizer, only rules a test can work out
//! by hand.
//!
//! - Prompt tokens are fairgate's filter's estimate (`core/src/llm.rs`), so that
//!   through the filter the estimate and the settled `usage` agree: the text bytes of
//!   the request's prompt fields (chat: `messages`, `tools`; completions: `prompt`,
//!   `suffix`; embeddings: `input`), a quarter, rounded up, at least 1:
//!   `max(1, (bytes + 3) / 4)`. Strings count their bytes; a number (a token id) 4
//!   bytes, one token; arrays and objects the text they hold, but for the values of
//!   the keys `role`, `type`, `name` and `id`; booleans and null nothing.
//! - An answer of `n` tokens is `n` words, one token a word: `hello <tenant> from
//!   <server> tok4 tok5 ...` (the first four name the tenant the server saw and the
//!   server, for the demo), cut to `n` words.
//! - `n` is the smallest of the request's caps (`max_tokens`,
//!   `max_completion_tokens`) and the length the test asked for; cut by a cap, the
//!   answer ends with `finish_reason: "length"`, else `"stop"`.

/// The prompt rule is the filter's own, used as is (see the module doc).
pub use fairgate_core::llm::{estimate_tokens as estimate, text_bytes};

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model was done.
    Stop,
    /// The request's token cap cut it.
    Length,
}

impl Finish {
    /// The OpenAI `finish_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// The answer's length in tokens, and why it ends there: `requested`, cut to the
/// request's `cap`.
pub fn answer_length(cap: Option<u64>, requested: u64) -> (u64, Finish) {
    match cap {
        Some(cap) if cap < requested => (cap, Finish::Length),
        _ => (requested, Finish::Stop),
    }
}

/// The words of every answer this server gives `tenant`.
#[derive(Debug, Clone)]
pub struct Answer {
    tenant: String,
    server: String,
}

impl Answer {
    pub fn new(tenant: &str, server: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            server: server.to_owned(),
        }
    }

    /// Token `i` as it is streamed: the word, after a space unless it is the first.
    pub fn piece(&self, i: u64) -> String {
        let word = match i {
            0 => "hello",
            1 => &self.tenant,
            2 => "from",
            3 => &self.server,
            _ => return format!(" tok{i}"),
        };
        if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        }
    }

    /// The first `n` tokens as one text.
    pub fn text(&self, n: u64) -> String {
        (0..n).map(|i| self.piece(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_a_token_per_four_bytes_rounded_up_and_at_least_one() {
        assert_eq!(estimate(0), 1);
        assert_eq!(estimate(1), 1);
        assert_eq!(estimate(4), 1);
        assert_eq!(estimate(5), 2);
        assert_eq!(estimate(400), 100);
    }

    #[test]
    fn text_is_counted_in_strings_and_token_ids_but_not_in_labels() {
        let message = serde_json::json!([
            {"role": "user", "name": "bob", "content": [
                {"type": "text", "text": "hello"},
                {"type": "image_url", "image_url": {"url": "abc"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": null, "done": true}
        ]);
        assert_eq!(text_bytes(&message), 5 + 3 + 2);
        assert_eq!(text_bytes(&serde_json::json!([1, 2, 3])), 12);
    }

    #[test]
    fn the_request_cap_cuts_the_answer_and_says_length() {
        assert_eq!(answer_length(Some(8), 64), (8, Finish::Length));
        assert_eq!(answer_length(Some(64), 64), (64, Finish::Stop));
        assert_eq!(answer_length(None, 5), (5, Finish::Stop));
        assert_eq!(answer_length(Some(0), 5), (0, Finish::Length));
    }

    #[test]
    fn the_answer_greets_the_tenant_then_counts_words() {
        let answer = Answer::new("acme", "pool_a");
        assert_eq!(answer.text(6), "hello acme from pool_a tok4 tok5");
        assert_eq!(answer.text(2), "hello acme");
        assert_eq!(answer.text(0), "");
        let streamed: String = (0..6).map(|i| answer.piece(i)).collect();
        assert_eq!(streamed, answer.text(6));
    }
}
