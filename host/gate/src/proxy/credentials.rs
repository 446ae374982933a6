//! Who asks: the identity checks of a request, run off the async threads when they cost.

use crate::Active;
use crate::identity::{Identity, Unauthorized};
use http::header::AUTHORIZATION;
use std::sync::Arc;

/// The client's login check (`GET /v2/`) with htpasswd configured: the gate asks for (and
/// checks) basic credentials, as a registry with htpasswd auth does.
pub(super) async fn login_check(
    active: &Arc<Active>,
    headers: &http::HeaderMap,
) -> Option<Unauthorized> {
    let checked = verify(active, headers, |identity, headers| identity.check_basic(headers)).await;
    match checked {
        Err(refused) => Some(refused),
        Ok(false) if !headers.contains_key(AUTHORIZATION) => Some(Unauthorized::AnonymousDenied),
        Ok(_) => None,
    }
}

/// Run an identity check. A bcrypt verification costs tens of milliseconds of CPU, so with
/// an htpasswd file the check runs on a blocking thread; otherwise (tokens, headers) inline.
pub(super) async fn verify<T: Send + 'static>(
    active: &Arc<Active>,
    headers: &http::HeaderMap,
    check: impl FnOnce(&Identity, &http::HeaderMap) -> Result<T, Unauthorized> + Send + 'static,
) -> Result<T, Unauthorized> {
    let identity = &active.rules.identity;
    if !identity.requires_basic_auth() {
        return check(identity, headers);
    }
    let (active, headers) = (active.clone(), headers.clone());
    tokio::task::spawn_blocking(move || check(&active.rules.identity, &headers))
        .await
        .unwrap_or(Err(Unauthorized::BadPassword))
}
