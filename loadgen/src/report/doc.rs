//! A tiny document model rendered to Markdown and to self-contained HTML.
//!
//! The reports are built once as a [`Doc`] and rendered twice, so `report.md` and
//! `report.html` cannot drift apart. The HTML embeds every chart (its SVG as a base64 data
//! URI, which keeps vector sharpness and avoids id clashes between inline SVGs) and links to
//! nothing outside the file.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

use super::ReportError;

/// Inline text.
#[derive(Clone, Debug)]
pub enum Inline {
    Text(String),
    Strong(String),
    Code(String),
}

/// A block of the document.
#[derive(Clone, Debug)]
pub enum Block {
    Heading(u8, String),
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    /// `numeric[i]`: right-align column i.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        numeric: Vec<bool>,
    },
    /// A chart: PNG shown in Markdown, SVG embedded in HTML; paths relative to the document.
    Image {
        alt: String,
        png: String,
        svg: String,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Self {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading(level, text.into()));
    }

    pub fn para(&mut self, text: impl Into<String>) {
        self.blocks
            .push(Block::Para(vec![Inline::Text(text.into())]));
    }

    pub fn inlines(&mut self, inlines: Vec<Inline>) {
        self.blocks.push(Block::Para(inlines));
    }

    pub fn list(&mut self, items: impl IntoIterator<Item = String>) {
        let items: Vec<Vec<Inline>> = items.into_iter().map(|s| vec![Inline::Text(s)]).collect();
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    /// A table; columns whose cells are all figures are right-aligned so digits line up.
    pub fn table(&mut self, header: Vec<String>, rows: Vec<Vec<String>>) {
        let numeric = (0..header.len())
            .map(|i| {
                let mut cells = rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .filter(|c| !matches!(c.as_str(), "—" | "n/a" | ""));
                let mut any = false;
                let all = cells.all(|c| {
                    any = true;
                    c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '+')
                });
                i > 0 && any && all
            })
            .collect();
        self.blocks.push(Block::Table {
            header,
            rows,
            numeric,
        });
    }

    pub fn text_table(&mut self, header: Vec<String>, rows: Vec<Vec<String>>) {
        let numeric = vec![false; header.len()];
        self.blocks.push(Block::Table {
            header,
            rows,
            numeric,
        });
    }

    pub fn image(
        &mut self,
        alt: impl Into<String>,
        png: impl Into<String>,
        svg: impl Into<String>,
    ) {
        self.blocks.push(Block::Image {
            alt: alt.into(),
            png: png.into(),
            svg: svg.into(),
        });
    }

    /// GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        for block in &self.blocks {
            match block {
                Block::Heading(level, text) => {
                    let _ = writeln!(
                        out,
                        "{} {}\n",
                        "#".repeat(usize::from(*level).clamp(2, 6)),
                        text
                    );
                }
                Block::Para(inlines) => {
                    let _ = writeln!(out, "{}\n", md_inlines(inlines));
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", md_inlines(item));
                    }
                    out.push('\n');
                }
                Block::Table {
                    header,
                    rows,
                    numeric,
                } => {
                    let cells = |row: &[String]| {
                        row.iter()
                            .map(|c| md_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    };
                    let _ = writeln!(out, "| {} |", cells(header));
                    let rule: Vec<&str> = numeric
                        .iter()
                        .map(|&n| if n { "---:" } else { "---" })
                        .collect();
                    let _ = writeln!(out, "| {} |", rule.join(" | "));
                    for row in rows {
                        let _ = writeln!(out, "| {} |", cells(row));
                    }
                    out.push('\n');
                }
                Block::Image { alt, png, svg } => {
                    let _ = writeln!(out, "![{alt}]({png})\n\n[{alt} (SVG)]({svg})\n");
                }
            }
        }
        out
    }

    /// One HTML file with the charts under `base` embedded.
    pub fn to_html(&self, base: &Path) -> Result<String, ReportError> {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            esc(&self.title),
            esc(&self.title)
        );
        for block in &self.blocks {
            match block {
                Block::Heading(level, text) => {
                    let l = level.clamp(&2, &6);
                    let _ = writeln!(out, "<h{l}>{}</h{l}>", esc(text));
                }
                Block::Para(inlines) => {
                    let _ = writeln!(out, "<p>{}</p>", html_inlines(inlines));
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        let _ = writeln!(out, "<li>{}</li>", html_inlines(item));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table {
                    header,
                    rows,
                    numeric,
                } => {
                    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
                    for (i, h) in header.iter().enumerate() {
                        let _ = write!(out, "<th{}>{}</th>", align(numeric, i), esc(h));
                    }
                    out.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for (i, c) in row.iter().enumerate() {
                            let _ = write!(out, "<td{}>{}</td>", cell_class(numeric, i, c), esc(c));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</tbody>\n</table></div>\n");
                }
                Block::Image { alt, svg, .. } => {
                    let path = base.join(svg);
                    let bytes = std::fs::read(&path).map_err(|e| ReportError::io(&path, e))?;
                    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                    let _ = writeln!(
                        out,
                        "<figure><img alt=\"{}\" src=\"data:image/svg+xml;base64,{data}\">\
                         <figcaption>{}</figcaption></figure>",
                        esc(alt),
                        esc(alt)
                    );
                }
            }
        }
        out.push_str("</body>\n</html>\n");
        Ok(out)
    }
}

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1150px;margin:2em auto;padding:0 1em;color:#1d2430;line-height:1.45}\
h1{font-size:1.7em;border-bottom:2px solid #d9dee7;padding-bottom:.3em}\
h2{font-size:1.35em;margin-top:1.8em;border-bottom:1px solid #e4e8ef;padding-bottom:.2em}\
h3{font-size:1.1em;margin-top:1.4em}\
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}\
th,td{border:1px solid #d9dee7;padding:.3em .6em;vertical-align:top}\
th{background:#f1f4f8;text-align:left}\
tbody tr:nth-child(even){background:#fafbfc}\
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.held{background:#e6f4ea;color:#14532d}.notheld{background:#fde8e8;color:#7f1d1d}\
.scroll{overflow-x:auto}\
code{background:#f1f4f8;padding:.1em .3em;border-radius:3px}\
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #e4e8ef}\
figcaption{color:#5b6575;font-size:.9em}\
li{margin:.2em 0}";

fn align(numeric: &[bool], i: usize) -> &'static str {
    if numeric.get(i).copied().unwrap_or(false) {
        " class=\"num\""
    } else {
        ""
    }
}

/// Colours the claim cells so a reader sees at a glance where it held.
fn cell_class(numeric: &[bool], i: usize, text: &str) -> &'static str {
    if text.starts_with('✔') {
        " class=\"held\""
    } else if text.starts_with('✘') {
        " class=\"notheld\""
    } else {
        align(numeric, i)
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn html_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(t) => esc(t),
            Inline::Strong(t) => format!("<strong>{}</strong>", esc(t)),
            Inline::Code(t) => format!("<code>{}</code>", esc(t)),
        })
        .collect()
}

fn md_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(t) => t.clone(),
            Inline::Strong(t) => format!("**{t}**"),
            Inline::Code(t) => format!("`{t}`"),
        })
        .collect()
}

/// A Markdown table cell: a `|` would end the cell, a newline the row.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_in_both_formats() {
        let mut d = Doc::new("T");
        d.table(
            vec!["metric".into(), "a|b".into(), "n".into()],
            vec![vec!["<x>".into(), "✔ held".into(), "12 ms".into()]],
        );
        let md = d.to_markdown();
        assert!(
            md.contains("| metric | a\\|b | n |\n| --- | --- | ---: |"),
            "{md}"
        );
        let html = d.to_html(Path::new(".")).unwrap();
        assert!(html.contains(
            "<td>&lt;x&gt;</td><td class=\"held\">✔ held</td><td class=\"num\">12 ms</td>"
        ));
    }
}
