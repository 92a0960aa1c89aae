//! The request-header pipeline, host-free: identify → resolve policy → budgets.
//!
//! `Gate` is one VM's view of the plugin: the validated config, that VM's token
//! cache, and the budgets in shared data. For each request it returns a `Verdict`:
//! forward (with the verified tenant to write into `forward_header`) or a local
//! reply. The glue (`host`) only fetches headers, calls `Gate::on_request_headers`,
//! and applies the verdict; everything here is tested natively with a
//! `MemoryStore` and a `ManualClock`.

use std::rc::Rc;

use crate::bucket::Take;
use crate::budget::{BudgetKind, Budgets};
use crate::clock::Clock;
use crate::config::{Config, Tenants};
use crate::identity::{IdentityError, RequestHeaders, TenantIdentifier};
use crate::metrics::Decision;
use crate::response::{self, LocalReply};
use crate::store::{SharedStore, StoreError};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Forward it; write `tenant` into the forward header.
    Forward {
        tenant: Rc<str>,
        /// The metrics label (the default policy's name for unlisted tenants).
        label: String,
        decision: Decision,
        /// Set when a budget could not be consulted: the request is let through.
        store_error: Option<StoreError>,
    },
    /// Answer it here.
    Reject {
        reply: LocalReply,
        label: Option<String>,
        decision: Decision,
    },
}

/// One VM's request gate.
#[derive(Debug)]
pub struct Gate {
    identifier: TenantIdentifier,
    tenants: Tenants,
    budgets: Budgets,
    forward_header: String,
}

impl Gate {
    /// `key_prefix` namespaces shared data (see `Budgets`); `cache_seed` keys the
    /// token cache.
    pub fn new(config: Config, key_prefix: &str, cache_seed: [u8; 16]) -> Self {
        let forward_header = config.identity.forward_header.clone();
        Self {
            identifier: TenantIdentifier::new(config.identity, cache_seed),
            tenants: config.tenants,
            budgets: Budgets::new(key_prefix),
            forward_header,
        }
    }

    /// The header the verified tenant is written to.
    pub fn forward_header(&self) -> &str {
        &self.forward_header
    }

    /// The request headers the gate reads.
    pub fn headers_read(&self) -> impl Iterator<Item = &str> {
        self.identifier.headers_read()
    }

    /// Creates the budget keys of every configured tenant that has none yet.
    pub fn prepare_budgets(&self, store: &dyn SharedStore, now_ms: u64) -> Result<(), StoreError> {
        for (name, policy) in &self.tenants.by_name {
            if let Some(limit) = &policy.requests {
                self.budgets
                    .ensure(store, BudgetKind::Requests, name, limit, now_ms)?;
            }
        }
        Ok(())
    }

    /// Decides what happens to a request, from its headers.
    pub fn on_request_headers(
        &mut self,
        headers: &impl RequestHeaders,
        store: &dyn SharedStore,
        clock: &impl Clock,
    ) -> Verdict {
        let now_ms = clock.now_ms();
        let tenant = match self.identifier.identify(headers, now_ms / 1000) {
            Ok(tenant) => tenant,
            Err(e) => {
                let reply = match e {
                    IdentityError::Missing(reason) => response::missing_tenant(&reason),
                    IdentityError::Invalid(reason) => response::invalid_tenant_token(&reason),
                };
                return Verdict::Reject {
                    reply,
                    label: None,
                    decision: Decision::Unauthenticated,
                };
            }
        };
        let Some(resolved) = self.tenants.resolve_tenant(&tenant) else {
            return Verdict::Reject {
                reply: response::unknown_tenant(&tenant),
                label: None,
                decision: Decision::UnknownTenant,
            };
        };
        let label = resolved.label.to_string();
        let mut store_error = None;
        if let Some(limit) = &resolved.policy.requests {
            match self
                .budgets
                .take(store, BudgetKind::Requests, &tenant, limit, now_ms, 1.0)
            {
                Ok(Take::Admitted { .. }) => {}
                Ok(Take::Limited {
                    retry_after_ms,
                    quota,
                }) => {
                    return Verdict::Reject {
                        reply: response::rate_limited(BudgetKind::Requests, retry_after_ms, &quota),
                        label: Some(label),
                        decision: Decision::RateLimited,
                    };
                }
                // Shared data failing is an Envoy fault, not the tenant's: serve the
                // request rather than turn every request into an error.
                Err(e) => store_error = Some(e),
            }
        }
        Verdict::Forward {
            tenant,
            label,
            decision: if store_error.is_some() {
                Decision::BudgetError
            } else {
                Decision::Admitted
            },
            store_error,
        }
    }
}
