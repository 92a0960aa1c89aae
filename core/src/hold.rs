//! Whether Envoy holds a request's headers while the filter reads its body.
//!
//! A request whose budget depends on its body (its tokens) must send nothing upstream
//! before that body is read: otherwise a refused request has already opened an
//! upstream connection and sent its headers, on the shared pool of every other tenant
//! (SPEC sections 1 and 6). Envoy's wasm filter passes the body to a filter that
//! paused at the headers only with the plugin option `allow_on_headers_stop_iteration:
//! true`; without it the paused request gets no body callback at all, and would wait
//! for ever. The option cannot be read from inside the VM, so each VM learns it from
//! its first request with a body:
//!
//! - `Unknown`: such a request is held at its headers and remembered as a probe.
//! - A body callback arrives for a held request: Envoy holds headers (`Holds`), for
//!   good.
//! - A probe waits `PROBE_MS` with no body callback: Envoy does not (`Forwards`, for
//!   good, with a loud log line). The stalled probes are let go on with their headers
//!   (their bodies then arrive as they pass) and every later request is read on its
//!   way through, after its headers have left: the behaviour of an Envoy without the
//!   option. A probe whose client went away is no evidence and is forgotten.
//!
//! A client that sends its headers and then waits `PROBE_MS` before its body, on the
//! first request a VM sees, would be taken for the missing option; the log line says
//! what was concluded and why. O(probes) per tick while `Unknown`, nothing after.

/// How long a held probe may wait for its first body callback.
pub const PROBE_MS: u64 = 1000;

/// What this VM knows of its Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Unknown,
    /// Headers wait while the body is read: admission follows the reservation.
    Holds,
    /// Headers go on before the body is read (no `allow_on_headers_stop_iteration`).
    Forwards,
}

/// One VM's knowledge of whether Envoy holds headers, and the probes that will tell.
#[derive(Debug)]
pub struct HeaderHold {
    state: HoldState,
    /// Requests held at their headers while `Unknown`: (context, since when).
    probes: Vec<(u32, u64)>,
}

impl Default for HeaderHold {
    fn default() -> Self {
        Self {
            state: HoldState::Unknown,
            probes: Vec::new(),
        }
    }
}

impl HeaderHold {
    pub fn state(&self) -> HoldState {
        self.state
    }

    /// Whether a request that needs its body read should be held at its headers.
    pub fn holds(&self) -> bool {
        self.state != HoldState::Forwards
    }

    /// The request of `context` is held at its headers, waiting for its body.
    pub fn held(&mut self, context: u32, now_ms: u64) {
        if self.state == HoldState::Unknown {
            self.probes.push((context, now_ms));
        }
    }

    /// A body callback came for a request held at its headers: Envoy holds them.
    /// True when this is news.
    pub fn body_arrived(&mut self) -> bool {
        if self.state != HoldState::Unknown {
            return false;
        }
        self.state = HoldState::Holds;
        self.probes.clear();
        true
    }

    /// The request of `context` ended before its body came.
    pub fn ended(&mut self, context: u32) {
        if self.state == HoldState::Unknown {
            self.probes.retain(|(c, _)| *c != context);
        }
    }

    /// At `now_ms`: where a probe has waited `PROBE_MS` for a body that never came,
    /// Envoy does not hold headers; returns the held requests, to be let go on.
    pub fn expire(&mut self, now_ms: u64) -> Option<Vec<u32>> {
        if self.state != HoldState::Unknown {
            return None;
        }
        let stalled = self
            .probes
            .iter()
            .any(|(_, since)| now_ms.saturating_sub(*since) >= PROBE_MS);
        if !stalled {
            return None;
        }
        self.state = HoldState::Forwards;
        Some(
            std::mem::take(&mut self.probes)
                .into_iter()
                .map(|(c, _)| c)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn a_body_for_a_held_request_shows_that_envoy_holds_headers() {
        let mut hold = HeaderHold::default();
        assert!(hold.holds(), "the first request is held to find out");
        hold.held(1, 0);
        assert!(hold.body_arrived());
        assert_eq!(hold.state(), HoldState::Holds);
        assert!(!hold.body_arrived(), "learnt once");
        hold.held(2, 10);
        assert_eq!(hold.expire(10 + 10 * PROBE_MS), None, "no more probes");
        assert!(hold.holds());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_probe_with_no_body_by_its_deadline_shows_that_envoy_forwards_headers() {
        let mut hold = HeaderHold::default();
        hold.held(1, 0);
        hold.held(2, 400);
        assert_eq!(hold.expire(PROBE_MS - 1), None);
        assert_eq!(hold.state(), HoldState::Unknown);
        assert_eq!(
            hold.expire(PROBE_MS),
            Some(vec![1, 2]),
            "every held request goes on"
        );
        assert_eq!(hold.state(), HoldState::Forwards);
        assert!(!hold.holds());
        assert!(
            !hold.body_arrived(),
            "a body after the fact changes nothing"
        );
        assert_eq!(hold.expire(5 * PROBE_MS), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_probe_whose_client_left_is_no_evidence() {
        let mut hold = HeaderHold::default();
        hold.held(1, 0);
        hold.ended(1);
        assert_eq!(hold.expire(10 * PROBE_MS), None);
        assert_eq!(hold.state(), HoldState::Unknown);
        hold.held(2, 10 * PROBE_MS);
        assert!(hold.body_arrived());
    }
}
