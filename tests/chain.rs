//! The filter chain as an embedder uses it: custom filters that answer, rewrite and observe,
//! and reloads through the library handle.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bridgecore::config::Config;
use bridgecore::filters::{
    Call, Decision, ErrorKind, Exchange, Filter, Outcome, Reply, ResponseHead,
};
use common::*;
use serde_json::{json, Value};

/// Refuses `hr.employee`, caps `search_read` limits at 2, and counts completions.
#[derive(Default)]
struct Policy {
    completed: AtomicUsize,
    failed: AtomicUsize,
}

#[async_trait]
impl Filter for Policy {
    fn name(&self) -> &'static str {
        "policy"
    }

    async fn on_request(&self, ex: &mut Exchange<'_>, call: &Call) -> Decision {
        if call.model.as_deref() == Some("hr.employee") {
            return Decision::Respond(Reply::jsonrpc_error(
                Some(call),
                ErrorKind::Forbidden,
                "no HR here",
            ));
        }
        if call.model.as_deref() == Some("x.version") {
            // Ask Odoo through the tenant's internal client and answer with what it said.
            let body = match ex
                .odoo
                .json_rpc("/web/webclient/version_info", json!({}), None)
                .await
            {
                Ok(reply) => json!({"jsonrpc": "2.0", "id": call.id, "result": reply.result}),
                Err(e) => {
                    json!({"jsonrpc": "2.0", "id": call.id, "error": {"message": e.to_string()}})
                }
            };
            return Decision::Respond(Reply::json(200, serde_json::to_vec(&body).unwrap()));
        }
        ex.state.insert(call.method.clone());
        if call.method.as_deref() == Some("search_read") {
            let mut new = call.clone();
            new.kwargs_mut().insert("limit".into(), json!(2));
            return Decision::Rewrite(Box::new(new));
        }
        Decision::Continue
    }

    async fn on_response(&self, ex: &mut Exchange<'_>, _call: &Call, head: &mut ResponseHead<'_>) {
        if let Some(Some(m)) = ex.state.get::<Option<String>>() {
            head.set(
                http::HeaderName::from_static("x-policy-method"),
                m.parse().unwrap(),
            );
        }
    }

    async fn on_complete(&self, _ex: &mut Exchange<'_>, _call: &Call, outcome: Outcome) {
        match outcome {
            Outcome::Answered(_) => self.completed.fetch_add(1, Ordering::SeqCst),
            Outcome::Failed => self.failed.fetch_add(1, Ordering::SeqCst),
        };
    }
}

#[tokio::test]
async fn a_filter_can_answer_rewrite_and_observe() {
    let policy = Arc::new(Policy::default());
    let h = Harness::with(Dataset::demo(), "", "", vec![policy.clone()]);
    let sid = login(&h.url(""), "admin", "admin").await;
    h.odoo.reset_counts();
    // The login went through the chain too (its completion runs just after the answer is sent).
    eventually(|| policy.completed.load(Ordering::SeqCst) == 1).await;

    // Answer: nothing reaches Odoo.
    let r = post_as(
        h.url("/web/dataset/call_kw"),
        &sid,
        &rpc(
            json!({"model": "hr.employee", "method": "search_read", "args": [], "kwargs": {}}),
            11,
        ),
    )
    .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], 11);
    assert_eq!(v["error"]["data"]["name"], "bridgecore.Forbidden");
    assert_eq!(h.odoo.count(), 0);

    // Rewrite: Odoo sees the new limit with a correct Content-Length.
    let call = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [], "kwargs": {"fields": ["name"], "limit": 50}}),
        12,
    );
    let r = post_as(
        h.url("/web/dataset/call_kw/res.partner/search_read"),
        &sid,
        &call,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-policy-method"], "search_read");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], 12);
    assert_eq!(v["result"].as_array().unwrap().len(), 2);
    let seen = h.odoo.requests().into_iter().last().unwrap();
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["params"]["kwargs"]["limit"], 2);
    assert_eq!(
        seen.headers["content-length"],
        seen.body.len().to_string().as_str()
    );

    // Observe: one completion per forwarded call; the refused one never completes.
    eventually(|| policy.completed.load(Ordering::SeqCst) == 2).await;
    assert_eq!(policy.failed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn filters_can_ask_odoo_through_the_tenants_client() {
    let h = Harness::with(Dataset::demo(), "", "", vec![Arc::new(Policy::default())]);
    let r = client()
        .post(h.url("/web/dataset/call_kw"))
        .json(&rpc(
            json!({"model": "x.version", "method": "get", "args": [], "kwargs": {}}),
            5,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], 5);
    assert_eq!(v["result"]["server_version"], "17.0");
    assert_eq!(h.odoo.count_path("/web/webclient/version_info"), 1);
    assert_eq!(h.odoo.count_path("/web/dataset/call_kw"), 0);
}

#[tokio::test]
async fn reload_through_the_handle_swaps_tenants_and_keeps_filters() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let (text, port, admin) = yaml(&[TenantSpec::for_odoo("odoo", &["erp"], &a)], "");
    let policy = Arc::new(Policy::default());
    let bc = start_yaml(&text, vec![policy.clone()]);
    let url = format!("http://127.0.0.1:{port}/web/health");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(a.count(), 1);

    // Same listeners, the tenant now points at b.
    let new_text = text.replace(&a.addr().to_string(), &b.addr().to_string());
    bc.handle()
        .reload(Config::from_yaml(&new_text, "test.yaml").unwrap())
        .unwrap();
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    assert_eq!((a.count(), b.count()), (1, 1));

    // The embedder's filter is still in the chain.
    let r = client()
        .post(format!("http://127.0.0.1:{port}/web/dataset/call_kw"))
        .json(&rpc(
            json!({"model": "hr.employee", "method": "read", "args": [[1]], "kwargs": {}}),
            1,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let metrics = String::from_utf8(bc.handle().metrics()).unwrap();
    assert!(
        metrics.contains("bridgecore_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    let _ = admin;
}
