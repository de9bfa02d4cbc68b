//! Arbitrary bytes → JSON → domain parse and canonicalisation (odoo-protocol.md §6).
//!
//! Checks: never a panic (nor a stack overflow, whatever the nesting); `parse` and
//! `canonicalise` agree on what is well-formed; the canonical form is idempotent, also after
//! a trip through its serialised text (what a cache key is made of).

#![no_main]

use bridgecore_filters::domain::{canonicalise, parse};
use bridgecore_filters::json;
use libfuzzer_sys::fuzz_target;

#[path = "same.rs"]
mod same;

fuzz_target!(|data: &[u8]| {
    let Ok(domain) = json::from_slice(data) else {
        return;
    };
    let parsed = parse(&domain);
    let canonical = canonicalise(&domain);
    assert_eq!(parsed.is_ok(), canonical.is_some(), "{domain}");
    let Some(canonical) = canonical else {
        return;
    };
    assert_eq!(
        canonicalise(&canonical).as_ref(),
        Some(&canonical),
        "not idempotent: {domain}"
    );
    let text = serde_json::to_vec(&canonical).expect("a Value serialises");
    let again = json::from_slice(&text).expect("serde_json reads its own output");
    assert!(same::same(&again, &canonical), "{again} != {canonical}");
    // What a cache key is made of stays canonical after the trip through text.
    assert_eq!(canonicalise(&again).as_ref(), Some(&again), "{domain}");
});
