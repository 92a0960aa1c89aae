//! A streamed answer: Server-Sent Events, one `data:` event a chunk, each handed to
//! hyper as soon as it is made, so the client sees the tokens one by one.
//!
//! Chat streams open with a chunk that carries only the role (sent right after
//! prefill); then one chunk per token, each `token_ms` after the one before; then a
//! chunk with `finish_reason`; with `stream_options.include_usage`, one with
//! `"choices": []` and `usage`; then `data: [DONE]`. The body owns the request's GPU
//! slot and ticket: both go when the body ends or hyper drops it (the client went
//! away). `x-mock-reset-after: K` makes the body fail after K token chunks, which
//! makes hyper abort the connection mid-stream. `x-mock-split-bytes: N` sends the
//! stream's bytes N at a time, a millisecond apart, so that events arrive cut at
//! arbitrary places (a test of the reader on the other end).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use crate::ledger::{Outcome, Ticket};
use crate::openai::{Delta, Reply};
use crate::server::Body;
use crate::tokens::{Answer, Finish};

/// What a stream sends.
pub struct Plan {
    pub reply: Reply,
    pub answer: Answer,
    /// Answer tokens.
    pub tokens: u64,
    pub finish: Finish,
    pub usage: Value,
    pub include_usage: bool,
    /// Fail the body after this many token chunks.
    pub abort_after: Option<u64>,
    pub token_ms: u64,
    /// Send the bytes this many at a time.
    pub split_bytes: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Role,
    Token(u64),
    Usage,
    Done,
    End,
}

struct Stream {
    plan: Plan,
    step: Step,
    ticket: Ticket,
    _slot: OwnedSemaphorePermit,
    /// Bytes made but not yet sent (with `split_bytes`).
    unsent: Bytes,
}

impl Stream {
    /// The next piece to send: the next event, or with `split_bytes`, its next bytes.
    async fn next_piece(&mut self) -> Option<io::Result<Bytes>> {
        let Some(n) = self.plan.split_bytes.filter(|n| *n > 0) else {
            return self.next().await;
        };
        if self.unsent.is_empty() {
            match self.next().await? {
                Ok(bytes) => self.unsent = bytes,
                Err(e) => return Some(Err(e)),
            }
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let piece = self.unsent.split_to(n.min(self.unsent.len()));
        Some(Ok(piece))
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        let plan = &self.plan;
        let chunk = match self.step {
            Step::Role => {
                self.step = Step::Token(0);
                plan.reply.chunk(Delta::Role, plan.include_usage)
            }
            Step::Token(i) if plan.abort_after == Some(i) => {
                // The connection breaks when the next token is due. hyper drops what
                // it has not written yet when a body fails, so the body pends once
                // first: hyper flushes the chunks it holds, and every chunk counted
                // as sent reaches the client.
                tokio::time::sleep(Duration::from_millis(plan.token_ms)).await;
                tokio::task::yield_now().await;
                self.step = Step::End;
                return Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "x-mock-reset-after",
                )));
            }
            Step::Token(i) if i < plan.tokens => {
                tokio::time::sleep(Duration::from_millis(plan.token_ms)).await;
                self.ticket.sent(1);
                self.step = Step::Token(i + 1);
                let piece = plan.answer.piece(i);
                plan.reply.chunk(Delta::Text(&piece), plan.include_usage)
            }
            Step::Token(_) => {
                self.step = if plan.include_usage {
                    Step::Usage
                } else {
                    Step::Done
                };
                plan.reply
                    .chunk(Delta::End(plan.finish), plan.include_usage)
            }
            Step::Usage => {
                self.step = Step::Done;
                plan.reply.usage_chunk(plan.usage.clone())
            }
            Step::Done => {
                self.step = Step::End;
                self.ticket.end(Outcome::Completed);
                return Some(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
            }
            Step::End => return None,
        };
        Some(Ok(Bytes::from(format!("data: {chunk}\n\n"))))
    }
}

/// The SSE body for `plan`, holding `ticket` and `slot` until it ends.
pub fn body(plan: Plan, ticket: Ticket, slot: OwnedSemaphorePermit) -> Body {
    let abort_after = plan.abort_after.map(|k| k.min(plan.tokens));
    let step = if plan.reply.chat {
        Step::Role
    } else {
        Step::Token(0)
    };
    let stream = Stream {
        plan: Plan {
            abort_after,
            ..plan
        },
        step,
        ticket,
        _slot: slot,
        unsent: Bytes::new(),
    };
    let chunks = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_piece().await?;
        Some((chunk.map(Frame::data), stream))
    });
    StreamBody::new(chunks).boxed_unsync()
}
