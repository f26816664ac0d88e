//! The connection to the Synapse backend and agent: an HTTP client with the
//! original's credential headers ([`http`]), its adapter to the plugin's
//! `ctx.client()` / `ctx.agent_client()` ([`client`]), and the job reporter
//! ([`sink`]) that sends a run's progress, metrics, logs and status to the
//! backend through an on-disk journal ([`journal`]) so that nothing is lost
//! when the backend is slow or down; leftovers are delivered later
//! ([`flush`]).

pub mod client;
pub mod config;
pub mod flush;
pub mod http;
pub mod journal;
pub mod record;
pub mod sink;

pub use client::ApiClient;
pub use config::{agent_endpoint, backend_endpoint, BackendSettings};
pub use http::{Endpoint, HttpClient, PathStyle, RequestError, RetryPolicy};
pub use sink::{BackendSink, DeliveryReport};
