//! Feed arbitrary bytes to the OPUS dump parser: it must return `Ok` or `Err`, never panic,
//! overflow the stack or hang.

#![no_main]

use dipex_integrations::opus::parse::parse_dump;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_dump(data, "fuzz") {
        // Rendering the error must not panic either.
        let _ = e.to_string();
    }
});
