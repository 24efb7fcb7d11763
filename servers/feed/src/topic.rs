//! Topic names: the CI build step a log belongs to. Defined in the protocol crate (both the
//! servers and the load generator name topics), re-exported here so `pushbench_feed::TopicId`
//! and `pushbench_feed::topic::*` keep working.

pub use pushbench_protocol::topic::{TopicError, TopicId, MAX_SEGMENT_LEN};
