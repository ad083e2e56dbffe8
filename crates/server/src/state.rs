//! The server's state is custody-vault's [`custody_vault::Service`], the one audited
//! service (named `App` here, as the handlers call it).

pub use custody_vault::{Secret, Service as App};
