//! Helpers shared by the integration tests, one file per thing they serve:
//! the binary (`binary`), loopback HTTP (`net`), Prometheus (`prom`),
//! MariaDB (`mysql`, and a private server in `mariadb`), the Elasticsearch-API servers (`es`), a
//! fault-injecting HTTP proxy (`proxy`), and a Pushgateway (`pushgateway`). Each test crate uses some of them.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod es;
pub mod kill_loop;
pub mod mariadb;
pub mod mysql;
pub mod net;
pub mod prom;
pub mod proxy;
pub mod pushgateway;

pub use binary::*;
pub use es::*;
pub use mariadb::*;
pub use mysql::*;
pub use net::*;
pub use prom::*;
pub use pushgateway::*;
