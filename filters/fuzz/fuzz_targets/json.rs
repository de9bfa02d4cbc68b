//! Arbitrary bytes → `json::is_valid` (the hand-written scanner of the JSON-RPC fast path and of
//! API answers) against `json::from_slice` (serde_json).
//!
//! Checks: never a panic; the scanner accepts exactly the documents serde_json reads, so that
//! the fast path never passes a body the straightforward reading refuses, nor refuses one it
//! reads.

#![no_main]

use bridgecore_filters::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let serde = json::from_slice(data).is_ok();
    assert_eq!(
        json::is_valid(data),
        serde,
        "{:?}",
        String::from_utf8_lossy(data)
    );
});
