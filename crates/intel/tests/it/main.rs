//! Feeds in every format through `rampart_intel`, checked entry by entry: what becomes an
//! indicator, and the line or object and reason of everything that does not.

mod csv;
mod misp;
mod stix;
mod taxii;
mod txt;

use rampart_core::indicator::{IndicatorRequest, IndicatorType};
use rampart_intel::{Defaults, FeedError, Format, Origin, Parsed, parse};

/// Parses with the default [`Defaults`], panicking on a file-level error.
pub fn read(format: Format, text: &str) -> Parsed {
    parse(format, text.as_bytes(), &Defaults::default())
        .unwrap_or_else(|e| panic!("{format} feed unreadable: {e}"))
}

/// (type, value) of every item, in order.
pub fn values(p: &Parsed) -> Vec<(IndicatorType, String)> {
    p.items
        .iter()
        .map(|i| {
            (
                i.request.indicator_type.expect("type"),
                i.request.indicator_value.clone().expect("value"),
            )
        })
        .collect()
}

/// The error for `origin`, panicking (with every error) when there is none.
pub fn error_at<'p>(p: &'p Parsed, origin: &Origin) -> &'p FeedError {
    p.errors
        .iter()
        .find(|e| &e.origin == origin)
        .unwrap_or_else(|| panic!("no error at {origin}; errors: {:#?}", p.errors))
}

pub fn line(n: usize) -> Origin {
    Origin::Line(n)
}

pub fn object(id: &str) -> Origin {
    Origin::Object(id.to_owned())
}

/// Every request must pass the API's own validation (the expiration aside, which depends on
/// the time of submission).
pub fn assert_valid(p: &Parsed) {
    let now = time::OffsetDateTime::now_utc();
    for item in &p.items {
        let mut r: IndicatorRequest = item.request.clone();
        r.expiration_time = None;
        if let Err(e) = r.validate(now) {
            panic!("{} does not validate: {}", item.origin, e.message);
        }
    }
}

pub const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
pub const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
