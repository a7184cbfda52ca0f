//! The operator's endpoint: `/metrics` (Prometheus text format) and `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use canh_metrics::Metrics;

/// Samples gauges (queue depths) just before a scrape.
pub type Sampler = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    sample: Sampler,
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (s.sample)();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Binds the endpoint; serve it with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics_: Metrics,
    sample: Sampler,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(AppState {
            metrics: metrics_,
            sample,
        });
    axum::serve(listener, app).await
}
