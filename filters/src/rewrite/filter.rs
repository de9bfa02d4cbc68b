//! The built-in filter that applies [`LimitCaps`](super::LimitCaps) to calls on the way to Odoo
//! (issue 5 item 1) and says so in the answer (`X-BridgeCore-Limit-Capped`,
//! `X-BridgeCore-Rewrite`).
//!
//! Which routes it touches is a choice of the deployment: by default the programmatic ones
//! (BridgeCore's `/api/v1`, `/jsonrpc`, XML-RPC, `/json/2`), whose callers asked for BridgeCore's
//! protection, and not the web client's cookie-session routes, which get exactly what Odoo would
//! return unless ops turn caps on for them.

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};

use super::limits::{cap_limit, header_value, Capped, LimitCaps, CAPPED_HEADER};
use crate::call::{Call, Shape};
use crate::filter::{Decision, Exchange, Filter, ResponseHead};

/// `X-BridgeCore-Rewrite`: the rewrites BridgeCore made to the call, comma-separated.
pub const REWRITE_HEADER: &str = "x-bridgecore-rewrite";

/// Where caps apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRoutes {
    /// `/api/v1/systems/{id}/odoo/...`.
    pub api: bool,
    /// `/jsonrpc`, `/xmlrpc`, `/json/2`: callers with their own credentials.
    pub rpc: bool,
    /// The web client's cookie-session routes (`/web/dataset/call_kw`, ...).
    pub web: bool,
}

impl Default for CapRoutes {
    /// Issue 5's defaults: API and RPC routes on, the web client's routes off.
    fn default() -> Self {
        CapRoutes {
            api: true,
            rpc: true,
            web: false,
        }
    }
}

/// Caps `limit` where configured.
#[derive(Debug, Clone)]
pub struct LimitCapFilter {
    caps: LimitCaps,
    routes: CapRoutes,
}

impl LimitCapFilter {
    /// A filter with these caps on these routes.
    pub fn new(caps: LimitCaps, routes: CapRoutes) -> Self {
        LimitCapFilter { caps, routes }
    }

    fn applies(&self, ex: &Exchange<'_>, call: &Call) -> bool {
        match call.shape {
            Shape::JsonRpc | Shape::XmlRpc { .. } | Shape::Json2 => self.routes.rpc,
            Shape::CallKw | Shape::CallButton | Shape::WebJson => {
                if ex.request.uri.path().starts_with("/api/v1/") {
                    self.routes.api
                } else {
                    self.routes.web
                }
            }
        }
    }
}

#[async_trait]
impl Filter for LimitCapFilter {
    fn name(&self) -> &'static str {
        "limit_caps"
    }

    async fn on_request(&self, ex: &mut Exchange<'_>, call: &Call) -> Decision {
        if !self.applies(ex, call) {
            return Decision::Continue;
        }
        let mut new = call.clone();
        match cap_limit(&mut new, &self.caps) {
            Some(capped) => {
                ex.state.insert(capped);
                Decision::Rewrite(Box::new(new))
            }
            None => Decision::Continue,
        }
    }

    async fn on_response(&self, ex: &mut Exchange<'_>, _call: &Call, head: &mut ResponseHead<'_>) {
        let Some(capped) = ex.state.get::<Capped>() else {
            return;
        };
        if let Ok(v) = HeaderValue::from_str(&header_value(capped)) {
            head.set(HeaderName::from_static(CAPPED_HEADER), v);
        }
        head.append(
            HeaderName::from_static(REWRITE_HEADER),
            HeaderValue::from_static("limit"),
        );
    }
}
