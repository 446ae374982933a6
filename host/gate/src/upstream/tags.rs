//! A repository's tag list, and the registry's catalog of repositories, read page by page and
//! a batch at a time, whatever their size.

use super::manifests::manifest_accept;
use super::{
    LOOKUP_TIMEOUT, MAX_ANSWER_BYTES, Reader, Upstream, UpstreamError, collect, unreachable_or_tls,
};
use crate::tag_list::TagListReader;
use http::header::LINK;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

impl Upstream {
    /// The tags of `repository`, page by page (following the upstream's `Link`), each page
    /// read as it arrives: whatever the size of an answer, only a batch of tags is held.
    pub fn tag_pages<'a>(&'a self, repository: &'a str, reader: &'a Reader) -> TagPages<'a> {
        TagPages {
            upstream: self,
            scope: format!("repository:{repository}:pull"),
            what: format!("`{repository}`"),
            key: "tags",
            // A repository that does not exist yet has no tags.
            missing_is_empty: true,
            reader,
            next: Some(format!("/v2/{repository}/tags/list?n={TAG_PAGE}")),
            body: None,
        }
    }

    /// The registry's repositories (`GET /v2/_catalog`), page by page as [`tag_pages`] reads
    /// tags. A registry that answers the catalog with 404 does not list its repositories.
    ///
    /// [`tag_pages`]: Upstream::tag_pages
    pub fn repository_pages<'a>(&'a self, reader: &'a Reader) -> TagPages<'a> {
        TagPages {
            upstream: self,
            scope: "registry:catalog:*".to_string(),
            what: "the catalog".to_string(),
            key: "repositories",
            missing_is_empty: false,
            reader,
            next: Some(format!("/v2/_catalog?n={TAG_PAGE}")),
            body: None,
        }
    }

    /// Every tag of `repository` (for the gate without an index, which reads the whole
    /// repository when a policy asks).
    pub async fn tags(
        &self,
        repository: &str,
        reader: &Reader,
    ) -> Result<Vec<String>, UpstreamError> {
        let mut pages = self.tag_pages(repository, reader);
        let mut tags = Vec::new();
        while let Some(batch) = pages.next_batch().await? {
            tags.extend(batch);
        }
        Ok(tags)
    }
}

/// Tags asked for per page of a tag list (registries that page honour it; CNCF distribution
/// 2.8 sends every tag at once, read as a stream).
const TAG_PAGE: usize = 1000;
/// Tags handed out at a time while a page is read.
const TAG_BATCH: usize = 1000;

/// A repository's tag list ([`Upstream::tag_pages`]) or the catalog
/// ([`Upstream::repository_pages`]), read a batch at a time.
pub struct TagPages<'a> {
    upstream: &'a Upstream,
    /// What the reads are for, as a token server scopes them.
    scope: String,
    /// The list, in errors.
    what: String,
    /// The key of the list in the document.
    key: &'static str,
    /// Whether a 404 is an empty list (a repository not created yet) or a refusal.
    missing_is_empty: bool,
    reader: &'a Reader,
    /// The path of the next page to ask for.
    next: Option<String>,
    /// The page being read.
    body: Option<(Incoming, TagListReader)>,
}

impl TagPages<'_> {
    /// The next names, at most [`TAG_BATCH`]; `None` at the end of the list.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<String>>, UpstreamError> {
        let mut batch = Vec::new();
        loop {
            let Some((body, reader)) = &mut self.body else {
                let Some(path) = self.next.take() else {
                    return Ok((!batch.is_empty()).then_some(batch));
                };
                let response = self
                    .upstream
                    .open_scoped(Method::GET, &self.scope, &path, manifest_accept(), self.reader)
                    .await?;
                match response.status() {
                    StatusCode::NOT_FOUND if self.missing_is_empty => continue,
                    status if status.is_success() => {}
                    _ => {
                        let (parts, body) = response.into_parts();
                        let bytes = collect(body, MAX_ANSWER_BYTES, "an error").await?;
                        return Err(UpstreamError::Refused(Box::new(Response::from_parts(
                            parts, bytes,
                        ))));
                    }
                }
                self.next = next_page(response.headers());
                self.body = Some((response.into_body(), TagListReader::of(self.key)));
                continue;
            };
            let frame = tokio::time::timeout(LOOKUP_TIMEOUT, body.frame()).await;
            match frame {
                Err(_) => return Err(UpstreamError::Timeout(LOOKUP_TIMEOUT)),
                Ok(Some(Err(error))) => return Err(unreachable_or_tls(&error)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let tags = reader
                            .feed(&data)
                            .map_err(|e| UpstreamError::Invalid(format!("{}: {e}", self.what)))?;
                        batch.extend(tags);
                    }
                }
                Ok(None) => {
                    let (_, reader) = self.body.take().expect("reading a page");
                    reader
                        .finish()
                        .map_err(|e| UpstreamError::Invalid(format!("{}: {e}", self.what)))?;
                }
            }
            if batch.len() >= TAG_BATCH {
                return Ok(Some(batch));
            }
        }
    }
}

/// The path of the next page from a `Link: </v2/...?last=x&n=1000>; rel="next"` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    // Only a path on this registry: never follow a link elsewhere.
    target.starts_with("/v2/").then(|| target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn pagination_follows_only_local_next_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=x&n=1000>; rel=\"next\""),
        );
        assert_eq!(next_page(&headers).as_deref(), Some("/v2/a/tags/list?last=x&n=1000"));
        headers.insert(LINK, HeaderValue::from_static("<http://evil/v2/a>; rel=\"next\""));
        assert_eq!(next_page(&headers), None);
        headers.insert(LINK, HeaderValue::from_static("</v2/a/tags/list?last=x>; rel=\"prev\""));
        assert_eq!(next_page(&headers), None);
    }
}
