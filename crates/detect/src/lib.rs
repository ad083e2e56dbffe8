//! custody-detect: what counts as customer data, and how sure we are.
//!
//! This crate owns the kinds of sensitive value custody knows ([`Kind`]), the candidate
//! matchers that find them in bytes, the validators that separate real identifiers from
//! look-alikes (Luhn and the IIN table, post-2011 SSN rules, mod-97, the ABA checksum,
//! numbering plans), the context scoring that raises or lowers confidence (keywords, keys,
//! column headers, negative words), and masking. It does no I/O: callers hand it buffers.
//!
//! ```
//! use custody_detect::{Chunk, Detector, DetectorConfig, Kind, Structure};
//!
//! let detector = Detector::new(DetectorConfig::default());
//! let mut found = Vec::new();
//! detector.detect(&Chunk::whole(b"card: 4539 1488 0343 6467"), &Structure::Plain, &mut found);
//! assert_eq!(found[0].kind, Kind::CreditCard);
//! assert_eq!(found[0].value.masked(Kind::CreditCard), "**** **** **** 6467");
//! ```

mod context;
mod detector;
mod email;
mod kind;
mod numeric;
mod phone;
mod secrets;
mod structured;
pub mod validate;
mod value;

pub use context::{Hint, hint_for_name};
pub use detector::{
    Chunk, DEFAULT_MIN_CONFIDENCE, Detection, Detector, DetectorConfig, Reason, Structure,
};
pub use kind::{Kind, UnknownKind};
pub use secrets::PEM_REACH;
pub use value::{SensitiveValue, mask};
