//! Arbitrary bytes as a `$filter`: parsing and checking against the alerts entity set must
//! return `Ok` or an `ODataError`, never panic, overflow the stack, or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_core::alert::ALERTS;
use rampart_core::odata::{QueryOptions, parse_filter};

fuzz_target!(|data: &[u8]| {
    // Requests reach the parser as URL-decoded UTF-8, lossily decoded where it is not.
    let src = String::from_utf8_lossy(data).into_owned();
    if let Err(e) = parse_filter(&src) {
        assert!(!e.message.is_empty() && !e.target.is_empty());
    }
    let parsed = QueryOptions::parse(&[("$filter".to_owned(), src)], &ALERTS);
    if let Err(e) = parsed {
        assert!(!e.message.is_empty() && !e.target.is_empty());
    }
});
