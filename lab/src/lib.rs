//! meshd's lab as a library: failover measurement from probe logs, the
//! verdict, the tables and JSON of `scripts/lab`, and the network-namespace
//! support shared by the netns tests.

pub mod args;
pub mod container;
pub mod faults;
pub mod flood;
pub mod host;
pub mod keepalived;
pub mod nat;
pub mod netns;
pub mod overlay;
pub mod paths;
pub mod probe;
pub mod report;
pub mod report_args;
pub mod scale;
pub mod summary;
pub mod table;
pub mod throughput;
pub mod timeline;
pub mod trial;
pub mod udp;
pub mod verdict;
pub mod watch;
pub mod watcher;
