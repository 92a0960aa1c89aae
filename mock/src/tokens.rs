//! Token counting and the answer text: no tokenizer, only rules a test can work out
//! by hand.
//!
//! - A prompt text of `b` bytes is `max(1, ceil(b / 4))` tokens, `(b + 3) / 4` — the
//!   estimate fairgate's filter makes before it knows the real usage, so that a test
//!   through the filter sees the estimate and the settlement agree. Where a request
//!   holds several texts (chat messages, a prompt or input array), their bytes are
//!   added up first and the sum is estimated once. A prompt given as token ids counts
//!   one token per id.
//! - An answer of `n` tokens is `n` words, one token a word: `hello <tenant> from
//!   <server> tok4 tok5 ...` (the first four name the tenant the server saw and the
//!   server, for the demo), cut to `n` words.
//! - `n` is the request's `max_completion_tokens` (else `max_tokens`) or the length
//!   the test asked for, whichever is smaller; capped by the request, the answer
//!   ends with `finish_reason: "length"`, else `"stop"`.

/// Tokens in a text of `bytes` bytes: `max(1, ceil(bytes / 4))`.
pub fn estimate(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

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
