//! Arbitrary text as a client's message on `/api/v1/ws` (issue 6, "Bad input") → the protocol
//! parser, and every answer BridgeCore would then write.
//!
//! Checks: never a panic; a refusal's `error` message and every accepted message's answer are
//! JSON objects of the documented `type`, echoing the `request_id` as read; an accepted
//! subscription keeps to the limits (sorted, distinct, bounded `record_ids` and `fields`, a
//! model-shaped name, field-shaped fields).

#![no_main]

use bridgecore_filters::ws::protocol::{
    self, error, is_field_name, is_model_name, pong, subscribed, unsubscribed,
};
use bridgecore_filters::ws::{ClientMessage, Limits};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn object(text: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        other => panic!("not a JSON object: {other:?} from {text}"),
    }
}

fn strictly_sorted<T: Ord>(items: &[T]) -> bool {
    items.windows(2).all(|w| w[0] < w[1])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        max_record_ids: 8,
        max_fields: 4,
    };
    match protocol::parse(text, &limits) {
        Err(e) => {
            let answer = object(&e.to_message());
            assert_eq!(answer["type"], "error", "{text}");
            assert_eq!(answer["code"], e.code.as_str(), "{text}");
            assert_eq!(answer.get("request_id"), e.request_id.as_ref(), "{text}");
            let plain = object(&error(None, e.code, &e.message));
            assert!(plain.get("request_id").is_none(), "{text}");
        }
        Ok(incoming) => {
            let id = incoming.request_id.as_ref();
            match &incoming.message {
                ClientMessage::Auth { token } => assert!(!token.is_empty(), "{text}"),
                ClientMessage::Ping { timestamp } => {
                    let answer = object(&pong(id, timestamp.as_ref()));
                    assert_eq!(answer["type"], "pong", "{text}");
                    assert_eq!(answer.get("request_id"), id, "{text}");
                }
                ClientMessage::Unsubscribe { subscription_id } => {
                    let answer = object(&unsubscribed(id, subscription_id));
                    assert_eq!(answer["type"], "unsubscribed", "{text}");
                    assert_eq!(answer["subscription_id"], subscription_id.as_str(), "{text}");
                }
                ClientMessage::Subscribe(s) => {
                    assert!(is_model_name(&s.model), "{text}");
                    if let Some(ids) = &s.record_ids {
                        assert!(ids.len() <= limits.max_record_ids, "{text}");
                        assert!(strictly_sorted(ids), "{text}");
                        assert!(ids.iter().all(|&i| (1..=i64::from(i32::MAX)).contains(&i)));
                    }
                    if let Some(fields) = &s.fields {
                        assert!(fields.len() <= limits.max_fields, "{text}");
                        assert!(strictly_sorted(fields), "{text}");
                        assert!(fields.iter().all(|f| is_field_name(f)), "{text}");
                    }
                    let system = s.system_id.as_deref().unwrap_or("odoo");
                    let answer = object(&subscribed(id, "sub-1", system, s));
                    assert_eq!(answer["type"], "subscribed", "{text}");
                    assert_eq!(answer.get("request_id"), id, "{text}");
                }
            }
        }
    }
});
