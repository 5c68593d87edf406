//! End-to-end tests against a real PostgreSQL and a real NATS JetStream server, and against
//! the embedded SQLite journal (tests defined with `both_backends!` run on each).
//! One binary (modules below) so that it links once.

mod audit;
mod auth;
mod bench;
mod bulk;
mod cache;
mod cli;
mod conformance;
mod consistency;
mod contracts;
mod event_stream;
mod faults;
mod faults_process;
mod formats;
mod harder;
mod harder_path;
mod helpers;
mod http;
mod journal;
mod nats_auth;
mod ops;
mod pages;
mod personal;
mod personal_bus;
mod relay;
mod research;
mod reservations;
mod scenario;
mod servers;
mod signing;
// The headless-Chromium harness of the browser tests (`pages`).
mod browser;
