//! Learns a tenant's dependency graph ([`DepGraph`]) from its Odoo, with the tenant's service
//! credentials, for `cache.invalidation: graph` (design.md §5, odoo-protocol.md §3.3).
//!
//! It speaks the external `/jsonrpc` API, so no web session is made or kept:
//!
//! 1. `common.login(db, login, password)` gives the uid (`false`: [`LearnError::Login`]);
//! 2. `object.execute_kw(db, uid, password, "ir.model", "search_read", [[]], {"fields":
//!    ["model"]})` lists the models;
//! 3. `object.execute_kw(..., model, "fields_get", [], {"attributes": [...]})` describes each
//!    one's fields, [`CONCURRENCY`] calls at a time (the tenant client also holds each call
//!    to the tenant's `max_connections`).
//!
//! A model whose `fields_get` Odoo refuses (an `AccessError` for the service user, a model
//! listed in `ir.model` but missing from the registry) is left out of the graph: writes on it
//! flush the tenant, and models whose dependencies go through it are treated as depending on
//! everything. A transport failure (Odoo down, a timeout) fails the whole learning instead, so
//! a half-learned graph never replaces a good one; the caller retries later.

use bridgecore_filters::cache::graph::DepGraph;
use bridgecore_filters::{OdooClient, OdooError};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

/// The `fields_get` attributes the graph reads.
pub const ATTRIBUTES: [&str; 7] = [
    "type",
    "relation",
    "related",
    "store",
    "depends",
    "relation_field",
    "readonly",
];

/// How many `fields_get` calls run at a time.
pub const CONCURRENCY: usize = 4;

/// Why a tenant's graph could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// `common.login` answered `false`: wrong service login or password for this database.
    #[error("the service login was refused (common.login answered false)")]
    Login,
    /// Odoo answered an error to the login or to the model list, or could not be reached.
    #[error(transparent)]
    Odoo(#[from] OdooError),
    /// Odoo answered something that is not what these calls return.
    #[error("unexpected answer from Odoo to {call}: {answer}")]
    Answer {
        /// The call, e.g. `common.login`.
        call: &'static str,
        /// The answer, shortened.
        answer: String,
    },
}

/// Learns `db`'s dependency graph through `odoo` as `login`/`password` (an API key works too).
pub async fn learn(
    odoo: &dyn OdooClient,
    db: &str,
    login: &str,
    password: &str,
) -> Result<DepGraph, LearnError> {
    let uid = match rpc(odoo, "common", "login", json!([db, login, password])).await? {
        Value::Bool(false) => return Err(LearnError::Login),
        Value::Number(n) if n.as_i64().is_some() => n,
        other => return Err(unexpected("common.login", &other)),
    };
    let execute = |model: &str, method: &str, args: Value, kwargs: Value| {
        rpc(
            odoo,
            "object",
            "execute_kw",
            json!([db, uid, password, model, method, args, kwargs]),
        )
    };

    let listed = execute(
        "ir.model",
        "search_read",
        json!([[]]),
        json!({"fields": ["model"]}),
    )
    .await?;
    let mut models: Vec<String> = listed
        .as_array()
        .ok_or_else(|| unexpected("ir.model.search_read", &listed))?
        .iter()
        .filter_map(|r| r.get("model").and_then(Value::as_str))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    models.sort_unstable();
    models.dedup();

    let attributes = json!({ "attributes": ATTRIBUTES });
    let answers: Vec<(String, Result<Value, OdooError>)> = stream::iter(models)
        .map(|model| {
            let call = execute(&model, "fields_get", json!([]), attributes.clone());
            async move {
                let answer = call.await;
                (model, answer)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut learned: Vec<(String, Value)> = Vec::with_capacity(answers.len());
    let mut refused: Vec<String> = Vec::new();
    for (model, answer) in answers {
        match answer {
            Ok(fields @ Value::Object(_)) => learned.push((model, fields)),
            // Odoo refused this model: it stays unknown (see the module docs).
            Ok(_) | Err(OdooError::Odoo { .. }) => {
                refused.push(model.clone());
                learned.push((model, Value::Null));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !refused.is_empty() {
        refused.sort_unstable();
        log::warn!(
            "cache graph: fields_get failed on {} model(s), left unknown: {}{}",
            refused.len(),
            refused
                .iter()
                .take(10)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            if refused.len() > 10 { ", ..." } else { "" }
        );
    }
    Ok(DepGraph::from_fields_get(
        learned.iter().map(|(m, v)| (m.as_str(), v)),
    ))
}

/// One `/jsonrpc` service call; its `result`.
async fn rpc(
    odoo: &dyn OdooClient,
    service: &str,
    method: &str,
    args: Value,
) -> Result<Value, OdooError> {
    let params = json!({"service": service, "method": method, "args": args});
    Ok(odoo.json_rpc("/jsonrpc", params, None).await?.result)
}

fn unexpected(call: &'static str, answer: &Value) -> LearnError {
    let mut answer = answer.to_string();
    if answer.len() > 200 {
        let mut end = 200;
        while !answer.is_char_boundary(end) {
            end -= 1;
        }
        answer.truncate(end);
        answer.push_str("...");
    }
    LearnError::Answer { call, answer }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use bridgecore_filters::cache::graph::Affected;
    use bridgecore_filters::OdooReply;
    use fake_odoo::{Dataset, FakeOdoo};

    use super::*;

    /// A plain JSON-RPC client to one fake Odoo, counting the calls in flight.
    struct Client {
        base: String,
        http: reqwest::Client,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl Client {
        fn new(base: String) -> Client {
            Client {
                base,
                http: reqwest::Client::new(),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }
        }
        fn of(odoo: &FakeOdoo) -> Client {
            Client::new(odoo.url(""))
        }
    }

    #[async_trait]
    impl OdooClient for Client {
        async fn json_rpc(
            &self,
            path: &str,
            params: Value,
            _session_id: Option<&str>,
        ) -> Result<OdooReply, OdooError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let answer = self
                .http
                .post(format!("{}{path}", self.base))
                .json(&json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}))
                .send()
                .await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let v: Value = answer
                .map_err(|e| OdooError::Unavailable(e.to_string()))?
                .json()
                .await
                .map_err(|e| OdooError::Protocol(e.to_string()))?;
            if let Some(e) = v.get("error") {
                return Err(OdooError::Odoo {
                    code: e["code"].as_i64().unwrap_or(200),
                    name: e["data"]["name"].as_str().unwrap_or("").into(),
                    message: e["data"]["message"].as_str().unwrap_or("").into(),
                });
            }
            Ok(OdooReply {
                result: v.get("result").cloned().unwrap_or(Value::Null),
                session_id: None,
            })
        }
    }

    fn models_of(odoo: &FakeOdoo) -> Vec<String> {
        odoo.with_data(|ds| ds.models.keys().cloned().collect())
    }

    #[tokio::test]
    async fn learns_the_demo_database() {
        let odoo = FakeOdoo::start(Dataset::demo());
        odoo.set_delay(Duration::from_millis(20));
        let client = Client::of(&odoo);
        let graph = learn(&client, "odoo", "admin", "admin").await.unwrap();

        let models = models_of(&odoo);
        assert_eq!(graph.models(), models.len());
        assert!(models.iter().all(|m| graph.knows(m)));
        assert!(graph.edges() > 0);
        assert_eq!(graph.unresolved().count(), 0);
        assert_eq!(
            graph.affected("sale.order.line"),
            Affected::Models(vec!["sale.order".into(), "sale.order.line".into()])
        );
        let Affected::Models(partner) = graph.affected("res.partner") else {
            panic!("res.partner is an ordinary model")
        };
        for m in ["res.partner", "sale.order", "account.move"] {
            assert!(partner.contains(&m.to_string()), "{m} in {partner:?}");
        }
        assert_eq!(graph.affected("res.users"), Affected::Tenant);
        assert_eq!(graph.affected("ir.model"), Affected::Tenant);
        assert_eq!(graph.affected("stock.picking"), Affected::Tenant);

        // One login, one model list, one fields_get per model, at most CONCURRENCY at a time.
        assert_eq!(odoo.count_calls("ir.model", "search_read"), 1);
        assert_eq!(odoo.count_calls("*", "fields_get"), models.len());
        assert_eq!(odoo.count_path("/jsonrpc"), 2 + models.len());
        let max = client.max_in_flight.load(Ordering::SeqCst);
        assert!(max <= CONCURRENCY && max > 1, "max in flight {max}");
        let asked = odoo
            .requests()
            .iter()
            .filter(|s| s.orm_call().is_some_and(|(_, m)| m == "fields_get"))
            .map(|s| s.json().unwrap()["params"]["args"][6].clone())
            .next()
            .unwrap();
        assert_eq!(asked, json!({ "attributes": ATTRIBUTES }));
    }

    #[tokio::test]
    async fn an_api_key_works_as_the_password() {
        let odoo = FakeOdoo::start(Dataset::demo());
        let graph = learn(&Client::of(&odoo), "odoo", "demo", "demo-api-key")
            .await
            .unwrap();
        assert_eq!(graph.models(), models_of(&odoo).len());
    }

    #[tokio::test]
    async fn refused_credentials_and_unreachable_odoo_are_errors() {
        let odoo = FakeOdoo::start(Dataset::demo());
        let client = Client::of(&odoo);
        assert!(matches!(
            learn(&client, "odoo", "admin", "wrong").await,
            Err(LearnError::Login)
        ));
        assert!(matches!(
            learn(&client, "nope", "admin", "admin").await,
            Err(LearnError::Odoo(OdooError::Odoo { .. }))
        ));
        assert_eq!(
            odoo.count_calls("*", "*"),
            0,
            "nothing after a failed login"
        );
        let url = odoo.url("");
        odoo.stop();
        assert!(matches!(
            learn(&Client::new(url), "odoo", "admin", "admin").await,
            Err(LearnError::Odoo(OdooError::Unavailable(_)))
        ));
    }

    #[tokio::test]
    async fn a_model_odoo_refuses_is_left_unknown() {
        let odoo = FakeOdoo::start(Dataset::demo());
        // Listed in ir.model but not in the registry: fields_get answers an error.
        odoo.with_data(|ds| {
            let ir = ds.model_mut("ir.model").unwrap();
            let id = ir.next_id;
            ir.records.insert(
                id,
                json!({"id": id, "model": "x.gone", "name": "Gone"})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            ir.next_id += 1;
        });
        let graph = learn(&Client::of(&odoo), "odoo", "admin", "admin")
            .await
            .unwrap();
        assert!(!graph.knows("x.gone"));
        assert_eq!(graph.models(), models_of(&odoo).len());
        assert_eq!(graph.affected("x.gone"), Affected::Tenant);
        let Affected::Models(ms) = graph.affected("product.product") else {
            panic!("product.product is an ordinary model")
        };
        assert!(ms.contains(&"x.gone".to_string()), "{ms:?}");
        assert_eq!(graph.unresolved().collect::<Vec<_>>(), vec!["x.gone"]);
    }
}
