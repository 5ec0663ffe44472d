//! Every connected server's tools, namespaced `server/tool`.

use rmcp::model::Tool;

/// One tool of one server.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub server: String,
    pub tool: Tool,
}

impl CatalogEntry {
    /// `server/tool`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.server, self.tool.name)
    }

    /// Whether calling this tool twice is harmless, so a failed attempt may
    /// be retried: the server says it is read-only or idempotent.
    pub fn retry_safe(&self) -> bool {
        self.tool
            .annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true))
    }
}

/// The tools of every reachable server, sorted by qualified name so that
/// planning never depends on connection order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// Builds a catalog from each server's tool list.
    pub fn new(servers: impl IntoIterator<Item = (String, Vec<Tool>)>) -> Self {
        let mut entries: Vec<CatalogEntry> = servers
            .into_iter()
            .flat_map(|(server, tools)| {
                tools.into_iter().map(move |tool| CatalogEntry {
                    server: server.clone(),
                    tool,
                })
            })
            .collect();
        entries.sort_by_key(CatalogEntry::qualified_name);
        Self { entries }
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
