//! The scenarios, each run on a fresh, empty store by
//! [`conformance_tests!`](crate::conformance_tests) (those that need
//! organizations or people seed them first).

mod account;
mod apps;
mod device;
mod directory;
mod grant_flow;
mod grants;
mod keys;
mod mail_links;
mod passkeys;
mod profile;
mod pushed;
mod second_factor;
mod secrets;
mod throttle;
mod tokens;
mod upstream;

pub use account::*;
pub use apps::*;
pub use device::*;
pub use directory::*;
pub use grant_flow::*;
pub use grants::*;
pub use keys::*;
pub use mail_links::*;
pub use passkeys::*;
pub use profile::*;
pub use pushed::*;
pub use second_factor::*;
pub use secrets::*;
pub use throttle::*;
pub use tokens::*;
pub use upstream::*;
