//! The audit as one self-contained HTML page: no script, style or font from the network, so
//! that it opens anywhere (an artifact of a CI job, a mail). Two bar charts (images refused
//! by repository, findings by policy) drawn as inline SVG, and the findings as a table that
//! sorts by any column (a few lines of inline script). The counts are in elements with ids
//! (`count-…`), which the tests read back.

use std::fmt::Write;
use tagpolicy_gate::audit::AuditReport;

/// Bars shown in the chart by repository: the repositories with the most refused images.
const MAX_BARS: usize = 30;

pub fn render(report: &AuditReport) -> anyhow::Result<String> {
    let summary = &report.summary;
    let mut page = String::with_capacity(16 << 10);
    write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>tagpolicy audit of {registry}</title><style>{STYLE}</style></head><body>\n\
         <h1>tagpolicy audit of <code>{registry}</code></h1>\n\
         <p>Rules of <code>{config}</code>, pushes decided at {time} as {actor}.</p>\n",
        registry = escape(&report.registry),
        config = escape(&report.config),
        time = escape(&report.time),
        actor = report
            .actor
            .as_deref()
            .map_or("an anonymous actor".to_string(), |a| format!("<code>{}</code>", escape(a))),
    )?;
    page.push_str("<dl class=\"counts\">");
    for (id, label, value) in [
        ("repositories", "repositories", summary.repositories),
        ("images", "images", summary.images),
        ("tags", "tags", summary.tags),
        ("denied-images", "images denied", summary.denied_images),
        ("failed-images", "refused: a policy failed", summary.failed_images),
        ("warned-images", "images warned", summary.warned_images),
        ("unread-repositories", "repositories not read", summary.unread_repositories),
    ] {
        write!(page, "<div><dt>{label}</dt><dd id=\"count-{id}\">{value}</dd></div>")?;
    }
    page.push_str("</dl>\n");

    let mut by_repository: Vec<(&str, u64)> = report
        .repositories
        .iter()
        .map(|r| {
            (r.name.as_str(), r.findings.iter().filter(|i| i.outcome.refuses()).count() as u64)
        })
        .filter(|(_, refused)| *refused > 0)
        .collect();
    by_repository.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown = by_repository.len().min(MAX_BARS);
    page.push_str("<h2>Images refused, by repository</h2>\n");
    if by_repository.len() > shown {
        write!(page, "<p>The {shown} repositories with the most, of {}.</p>", by_repository.len())?;
    }
    bars(&mut page, "chart-repositories", &by_repository[..shown])?;
    let by_policy: Vec<(&str, u64)> = summary
        .policies
        .iter()
        .map(|(policy, counts)| (policy.as_str(), counts.denials + counts.errors + counts.warnings))
        .collect();
    page.push_str("<h2>Findings, by policy</h2>\n");
    bars(&mut page, "chart-policies", &by_policy)?;

    page.push_str(
        "<h2>Findings</h2>\n<table id=\"findings\"><thead><tr>\
         <th>repository</th><th>tags</th><th>image</th><th>decision</th><th>policy</th><th>reason</th>\
         </tr></thead><tbody>\n",
    );
    for repository in &report.repositories {
        if let Some(error) = &repository.error {
            writeln!(
                page,
                "<tr class=\"unread\"><td>{}</td><td></td><td></td><td>NOT READ</td><td></td><td>{}</td></tr>",
                escape(&repository.name),
                escape(error)
            )?;
        }
        for image in &repository.findings {
            for finding in &image.findings {
                let tags = finding.tag.clone().unwrap_or_else(|| image.tags.join(", "));
                writeln!(
                    page,
                    "<tr class=\"{outcome}\"><td>{repository}</td><td>{tags}</td><td title=\"{digest}\">{short}</td>\
                     <td>{decision}</td><td>{policy}</td><td>{reason}</td></tr>",
                    outcome = image.outcome.as_str(),
                    repository = escape(&repository.name),
                    tags = escape(&tags),
                    digest = escape(&image.digest),
                    short = escape(&image.digest.chars().take(19).collect::<String>()),
                    decision = image.outcome.as_str().to_uppercase(),
                    policy = escape(&finding.policy),
                    reason = escape(&finding.reason),
                )?;
            }
        }
    }
    write!(
        page,
        "</tbody></table>\n<p class=\"foot\">{seconds:.1} s, {requests} requests to the registry. \
         Click a column's title to sort by it (or open the page at <code>#sort=N</code>).</p>\n<script>{SCRIPT}</script>\n</body></html>\n",
        seconds = summary.seconds,
        requests = summary.upstream_requests,
    )?;
    Ok(page)
}

/// A horizontal bar chart of `values`, as inline SVG.
fn bars(page: &mut String, id: &str, values: &[(&str, u64)]) -> std::fmt::Result {
    if values.is_empty() {
        return writeln!(page, "<p id=\"{id}\" class=\"none\">None.</p>");
    }
    const ROW: usize = 22;
    let most = values.iter().map(|(_, value)| *value).max().unwrap_or(1).max(1);
    let height = values.len() * ROW;
    write!(
        page,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" viewBox=\"0 0 800 {height}\" width=\"800\" height=\"{height}\">"
    )?;
    for (row, (label, value)) in values.iter().enumerate() {
        let y = row * ROW;
        let width = (*value as f64 / most as f64 * 480.0).max(1.0);
        write!(
            page,
            "<g data-label=\"{label}\" data-value=\"{value}\"><text x=\"0\" y=\"{ty}\">{label}</text>\
             <rect x=\"260\" y=\"{y}\" width=\"{width:.1}\" height=\"{bar}\"></rect>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{value}</text></g>",
            label = escape(label),
            ty = y + 15,
            bar = ROW - 6,
            tx = 266.0 + width,
        )?;
    }
    page.push_str("</svg>\n");
    Ok(())
}

/// `text` safe in HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
code{font-family:ui-monospace,monospace}\
.counts{display:flex;gap:1.5em;flex-wrap:wrap}.counts div{border:1px solid #ccc;padding:.5em 1em;border-radius:4px}\
dt{color:#666;font-size:12px}dd{margin:0;font-size:22px;font-weight:600}\
svg.chart text{font-size:12px;fill:#222}svg.chart rect{fill:#c0392b}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f4f4f4;cursor:pointer;user-select:none}tr.deny td:nth-child(4){color:#c0392b;font-weight:600}\
tr.error td:nth-child(4){color:#8e44ad;font-weight:600}tr.warn td:nth-child(4){color:#b9770e}\
.foot{color:#666}";

/// Sort the findings by the clicked column (a second click reverses), or as the address asks
/// (`report.html#sort=5` by policy, `#sort=1-desc` by tags, descending), so that a sorted view
/// can be linked to.
const SCRIPT: &str = "(function(){var table=document.getElementById('findings');\
var heads=table.querySelectorAll('th');\
function sortBy(column,up){var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);\
heads.forEach(function(other){delete other.dataset.order;});heads[column].dataset.order=up?'up':'down';\
rows.sort(function(a,b){var x=a.cells[column].textContent,y=b.cells[column].textContent;\
return up?x.localeCompare(y):y.localeCompare(x);});\
rows.forEach(function(row){body.appendChild(row);});}\
heads.forEach(function(th,column){th.addEventListener('click',function(){sortBy(column,th.dataset.order!=='up');});});\
var asked=/^#sort=(\\d+)(-desc)?$/.exec(location.hash);\
if(asked&&heads[+asked[1]]){sortBy(+asked[1],!asked[2]);}})();";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_registry_are_escaped() {
        assert_eq!(escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }
}
