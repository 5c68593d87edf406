//! End-to-end tests against a real PostgreSQL and a real NATS JetStream server.
//! One binary (modules below) so that it links once.

mod cli;
mod faults;
mod helpers;
mod http;
mod journal;
mod relay;
mod scenario;
