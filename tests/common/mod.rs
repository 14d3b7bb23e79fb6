//! Helpers shared by the integration tests, one file per thing they serve:
//! the binary (`binary`), loopback HTTP (`net`), Prometheus (`prom`),
//! MariaDB (`mysql`, and a private server in `mariadb`), the Elasticsearch-API servers (`es`), and a
//! fault-injecting HTTP proxy (`proxy`). Each test crate uses some of them.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod es;
pub mod mariadb;
pub mod mysql;
pub mod net;
pub mod prom;
pub mod proxy;

pub use binary::*;
pub use es::*;
pub use mariadb::*;
pub use mysql::*;
pub use net::*;
pub use prom::*;
